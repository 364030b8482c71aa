namespace ScratchGpt.Decoding;

/// <summary>Softmax, log-softmax, argmax and top-k over one row of scores, in float32 as PyTorch does them.</summary>
public static class TokenMath
{
    /// <summary>softmax(x) = exp(x − max) · (1 / Σ exp(x − max)); exp(x − max) never overflows.</summary>
    public static void Softmax(ReadOnlySpan<float> scores, Span<float> probs)
    {
        float max = Max(scores);
        for (int i = 0; i < scores.Length; i++) probs[i] = MathF.Exp(scores[i] - max);
        float inverse = 1f / SumLikeTorch(probs[..scores.Length]);
        for (int i = 0; i < scores.Length; i++) probs[i] *= inverse;
    }

    /// <summary>
    /// Σ x accumulated in float32 the way PyTorch's CPU softmax / log_softmax kernels do (vectorised with AVX2):
    /// eight lanes, lane i summing elements i, i + 8, i + 16, …, the tail added into the first lanes, then the
    /// eight lanes added in order. Over 50,257 terms the float32 rounding of this order is not negligible: the
    /// many tiny tail probabilities fall below half an ulp of the running lane sums and are dropped, so the sum
    /// comes out up to ~3e-5 (relative) low. Summing the same way gives transformers' log-probs to ~3e-6;
    /// an exact (float64) sum would differ from them by up to 8e-5.
    /// </summary>
    public static float SumLikeTorch(ReadOnlySpan<float> x)
    {
        const int Lanes = 8;
        Span<float> lane = stackalloc float[Lanes];
        lane.Clear();
        int n = x.Length, d = 0;
        for (; d + Lanes <= n; d += Lanes)
            for (int i = 0; i < Lanes; i++) lane[i] += x[d + i];
        for (int i = 0; d + i < n; i++) lane[i] += x[d + i];
        float sum = lane[0];
        for (int i = 1; i < Lanes; i++) sum += lane[i];
        return sum;
    }

    /// <summary>log_softmax(x) = x − max − log Σ exp(x − max), the sum as <see cref="SumLikeTorch"/>.</summary>
    public static void LogSoftmax(ReadOnlySpan<float> scores, Span<float> result)
    {
        float max = Max(scores);
        for (int i = 0; i < scores.Length; i++) result[i] = MathF.Exp(scores[i] - max);
        float logSum = MathF.Log(SumLikeTorch(result[..scores.Length]));
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
