namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// Forbids any n-gram from occurring twice: if the last n−1 tokens already occurred earlier followed
/// by token t, then t gets score −∞. The whole sequence, prompt included, is searched.
/// </summary>
public sealed class NoRepeatNGramLogitsProcessor : ILogitsProcessor
{
    public int N { get; }

    public NoRepeatNGramLogitsProcessor(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), $"no_repeat_ngram_size must be positive, got {n}");
        N = n;
    }

    public IEnumerable<int> BannedTokens(ReadOnlySpan<int> ids)
    {
        var banned = new List<int>();
        int L = ids.Length;
        if (L + 1 < N) return banned;
        var prefix = ids[(L - N + 1)..];                 // the last n−1 tokens
        for (int i = 0; i + N <= L; i++)                 // every n-gram ids[i .. i+n−1]
            if (ids.Slice(i, N - 1).SequenceEqual(prefix)) banned.Add(ids[i + N - 1]);
        return banned;
    }

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        foreach (int t in BannedTokens(inputIds)) scores[t] = float.NegativeInfinity;
    }
}
