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

    // Reused from step to step (a warper belongs to one generation): the sort's buffers and the probabilities.
    private readonly StableArgsort _argsort = new();
    private int[] _order = [];
    private float[] _p = [];

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        int n = scores.Length;
        if (_order.Length < n) { _order = new int[n]; _p = new float[n]; }
        var order = _order.AsSpan(0, n);
        _argsort.Sort(scores, order);   // ascending, ties in index order

        // softmax over the sorted scores, then the running sum.
        float max = scores[order[n - 1]];
        double sumExp = 0;
        var p = _p.AsSpan(0, n);
        for (int i = 0; i < n; i++) { p[i] = MathF.Exp(scores[order[i]] - max); sumExp += p[i]; }
        float cut = (float)(1.0 - (double)TopP);
        double acc = 0;
        int removed = 0;
        for (int i = 0; i < n - MinTokensToKeep; i++)
        {
            acc += p[i] / (float)sumExp;
            if ((float)acc <= cut) removed++;
            else break;   // the cumulative sum only grows
        }
        // after reading: order indexes scores
        for (int i = 0; i < removed; i++) scores[order[i]] = float.NegativeInfinity;
    }
}
