namespace ScratchGpt.Decoding;

/// <summary>Softmax, log-softmax, argmax and top-k over one row of scores, in float32 as PyTorch does them.</summary>
public static class TokenMath
{
    public static void Softmax(ReadOnlySpan<float> scores, Span<float> probs)
    {
        // exp(x − max) never overflows; the sum of ~50k terms is accumulated in double.
        float max = Max(scores);
        double sum = 0;
        for (int i = 0; i < scores.Length; i++) { probs[i] = MathF.Exp(scores[i] - max); sum += probs[i]; }
        float total = (float)sum;
        for (int i = 0; i < scores.Length; i++) probs[i] /= total;
    }

    /// <summary>log_softmax(x) = x − max − log Σ exp(x − max).</summary>
    public static void LogSoftmax(ReadOnlySpan<float> scores, Span<float> result)
    {
        float max = Max(scores);
        double sum = 0;
        for (int i = 0; i < scores.Length; i++) sum += MathF.Exp(scores[i] - max);
        float logSum = (float)Math.Log(sum);
        for (int i = 0; i < scores.Length; i++) result[i] = scores[i] - max - logSum;
    }

    public static float Max(ReadOnlySpan<float> x)
    {
        float m = float.NegativeInfinity;
        foreach (float v in x) if (v > m) m = v;
        return m;
    }

    /// <summary>Index of the largest score; the lowest index wins a tie (as torch.argmax).</summary>
    public static int Argmax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    /// <summary>The k largest entries, best first (lower index first among equals).</summary>
    public static (int Index, float Value)[] TopK(ReadOnlySpan<float> x, int k)
    {
        k = Math.Min(k, x.Length);
        var best = new List<(int Index, float Value)>(k + 1);
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            if (best.Count == k && !(v > best[k - 1].Value)) continue;
            int pos = best.Count;
            while (pos > 0 && best[pos - 1].Value < v) pos--;
            best.Insert(pos, (i, v));
            if (best.Count > k) best.RemoveAt(k);
        }
        return best.ToArray();
    }
}
