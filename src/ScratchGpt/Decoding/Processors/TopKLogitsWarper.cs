namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// Keeps the k highest scores (k = max(top_k, min_tokens_to_keep)) and sets the rest to −∞. Every
/// score equal to the k-th largest is kept, so ties can leave more than k tokens.
/// </summary>
public sealed class TopKLogitsWarper : ILogitsProcessor
{
    public int TopK { get; }

    public TopKLogitsWarper(int topK, int minTokensToKeep = 1)
    {
        if (topK <= 0) throw new GenerationConfigException($"top_k must be a positive integer, got {topK}");
        TopK = Math.Max(topK, minTokensToKeep);
    }

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        int k = Math.Min(TopK, scores.Length);
        float threshold = KthLargest(scores, k);
        for (int i = 0; i < scores.Length; i++)
            if (scores[i] < threshold) scores[i] = float.NegativeInfinity;
    }

    /// <summary>The k-th largest value: a sorted buffer of the best k seen so far, updated by insertion.</summary>
    public static float KthLargest(ReadOnlySpan<float> scores, int k)
    {
        var best = new float[k];                 // descending
        int count = 0;
        foreach (float s in scores)
        {
            if (count == k && !(s > best[k - 1])) continue;
            int pos = count < k ? count++ : k - 1;
            while (pos > 0 && best[pos - 1] < s) { best[pos] = best[pos - 1]; pos--; }
            best[pos] = s;
        }
        return best[k - 1];
    }
}
