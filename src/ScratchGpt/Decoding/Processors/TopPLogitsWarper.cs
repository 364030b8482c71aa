namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// Nucleus sampling: keep the smallest set of likeliest tokens whose probabilities sum to at least
/// top_p. As transformers computes it: sort ascending, cumulative softmax (float32 partial sums of a
/// double accumulator), drop the tokens with cumsum ≤ 1 − top_p, but never the last min_tokens_to_keep.
/// </summary>
public sealed class TopPLogitsWarper : ILogitsProcessor
{
    public float TopP { get; }
    public int MinTokensToKeep { get; }

    public TopPLogitsWarper(float topP, int minTokensToKeep = 1)
    {
        if (!(topP > 0 && topP <= 1)) throw new GenerationConfigException($"top_p must be in (0, 1], got {topP}");
        TopP = topP;
        MinTokensToKeep = Math.Max(1, minTokensToKeep);
    }

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        int n = scores.Length;
        // Ascending order of scores (ties in index order).
        var order = new int[n];
        var keys = scores.ToArray();
        for (int i = 0; i < n; i++) order[i] = i;
        Array.Sort(keys, order);
        StableTies(keys, order);

        // softmax over the sorted scores, then the running sum.
        float max = keys[n - 1];
        double sumExp = 0;
        var p = new float[n];
        for (int i = 0; i < n; i++) { p[i] = MathF.Exp(keys[i] - max); sumExp += p[i]; }
        float cut = (float)(1.0 - (double)TopP);
        double acc = 0;
        for (int i = 0; i < n - MinTokensToKeep; i++)
        {
            acc += p[i] / (float)sumExp;
            if ((float)acc <= cut) scores[order[i]] = float.NegativeInfinity;
            else break;   // the cumulative sum only grows
        }
    }

    /// <summary>Array.Sort is not stable; put equal keys back in index order.</summary>
    private static void StableTies(float[] keys, int[] order)
    {
        for (int i = 0; i < keys.Length;)
        {
            int j = i + 1;
            while (j < keys.Length && keys[j].Equals(keys[i])) j++;
            if (j - i > 1) Array.Sort(order, i, j - i);
            i = j;
        }
    }
}
