using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// Attention over whole training sequences (no cache), forward and backward.
///   qkv [B·T, 3E], y [B·T, E], probs (kept for the backward) [B, H, T, T] with future positions 0.
///   mask (attention dropout, when hasMask ≠ 0) [B, H, T, T] of 0 or 1/(1 − p), scaling the weights that mix v.
/// A thread per (sequence, head, position) (grid-stride), groups of 64.
/// </summary>
public static class AttentionTraining
{
    /// <summary>The softmax row of query t goes straight into probs; y_t = Σ_u p[t, u] · mask[t, u] · v_u.</summary>
    public static void Forward(ArrayView<float> qkv, ArrayView<float> y, ArrayView<float> probs, ArrayView<float> mask,
        int hasMask, int batch, int seq, int nHead, int headDim)
    {
        for (int g = Grid.GlobalIndex.X; g < batch * nHead * seq; g += GridStride.Threads)
            ForwardQuery(qkv, y, probs, mask, hasMask, seq, nHead, headDim, g);
    }

    private static void ForwardQuery(ArrayView<float> qkv, ArrayView<float> y, ArrayView<float> probs,
        ArrayView<float> mask, int hasMask, int seq, int nHead, int headDim, int g)
    {
        int t = g % seq, bh = g / seq, b = bh / nHead, h = bh % nHead, e = nHead * headDim;
        float scale = 1f / XMath.Sqrt((float)headDim);
        long q = (long)(b * seq + t) * 3 * e + h * headDim;
        long p = (long)(bh * seq + t) * seq;
        float m = float.NegativeInfinity;
        for (int u = 0; u <= t; u++)
        {
            long k = (long)(b * seq + u) * 3 * e + e + h * headDim;
            float s = 0f;
            for (int d = 0; d < headDim; d++) s += qkv[q + d] * qkv[k + d];
            probs[p + u] = s * scale;
            m = XMath.Max(m, probs[p + u]);
        }
        float l = 0f;
        for (int u = 0; u <= t; u++) { probs[p + u] = XMath.Exp(probs[p + u] - m); l += probs[p + u]; }
        for (int u = 0; u <= t; u++) probs[p + u] /= l;
        for (int u = t + 1; u < seq; u++) probs[p + u] = 0f;
        for (int d = 0; d < headDim; d++)
        {
            float acc = 0f;
            for (int u = 0; u <= t; u++)
                acc += probs[p + u] * (hasMask != 0 ? mask[p + u]
                    : 1f) * qkv[(long)(b * seq + u) * 3 * e + 2 * e + h * headDim + d];
            y[(long)(b * seq + t) * e + h * headDim + d] = acc;
        }
    }

    /// <summary>
    /// For query t, with dp[t, u] = dy_t · v_u (scaled by the mask when dropping):
    ///   ds[t, u] = p[t, u] (dp[t, u] − Σ_u' p[t, u'] dp[t, u']) / √D   (the softmax's Jacobian; kept in dscores)
    ///   dq_t = Σ_u ds[t, u] k_u   → dqkv's q columns.
    /// </summary>
    public static void BackwardQuery(ArrayView<float> qkv, ArrayView<float> probs, ArrayView<float> mask, int hasMask,
        ArrayView<float> dy, ArrayView<float> dscores, ArrayView<float> dqkv, int batch, int seq, int nHead,
        int headDim)
    {
        for (int g = Grid.GlobalIndex.X; g < batch * nHead * seq; g += GridStride.Threads)
            QueryGradient(qkv, probs, mask, hasMask, dy, dscores, dqkv, seq, nHead, headDim, g);
    }

    private static void QueryGradient(ArrayView<float> qkv, ArrayView<float> probs, ArrayView<float> mask, int hasMask,
        ArrayView<float> dy, ArrayView<float> dscores, ArrayView<float> dqkv, int seq, int nHead, int headDim, int g)
    {
        int t = g % seq, bh = g / seq, b = bh / nHead, h = bh % nHead, e = nHead * headDim;
        float scale = 1f / XMath.Sqrt((float)headDim);
        long p = (long)(bh * seq + t) * seq;
        long dyt = (long)(b * seq + t) * e + h * headDim;
        float weighted = 0f;
        for (int u = 0; u <= t; u++)
        {
            long v = (long)(b * seq + u) * 3 * e + 2 * e + h * headDim;
            float dp = 0f;
            for (int d = 0; d < headDim; d++) dp += dy[dyt + d] * qkv[v + d];
            if (hasMask != 0) dp *= mask[p + u];
            dscores[p + u] = dp;
            weighted += probs[p + u] * dp;
        }
        for (int u = 0; u <= t; u++) dscores[p + u] = probs[p + u] * (dscores[p + u] - weighted) * scale;
        for (int d = 0; d < headDim; d++)
        {
            float acc = 0f;
            for (int u = 0; u <= t; u++) acc += dscores[p + u] * qkv[(long)(b * seq + u) * 3 * e + e + h * headDim + d];
            dqkv[(long)(b * seq + t) * 3 * e + h * headDim + d] = acc;
        }
    }

    /// <summary>
    /// For key position u, over the queries t ≥ u that saw it: dk_u = Σ_t ds[t, u] q_t, dv_u =
    /// Σ_t p[t, u] m[t, u] dy_t.
    /// Runs after <see cref="BackwardQuery"/> (it reads dscores); writes dqkv's k and v columns, so nothing is
    /// written twice.
    /// </summary>
    public static void BackwardKeyValue(ArrayView<float> qkv, ArrayView<float> probs, ArrayView<float> mask,
        int hasMask,
        ArrayView<float> dy, ArrayView<float> dscores, ArrayView<float> dqkv, int batch, int seq, int nHead,
        int headDim)
    {
        for (int g = Grid.GlobalIndex.X; g < batch * nHead * seq; g += GridStride.Threads)
            KeyValueGradient(qkv, probs, mask, hasMask, dy, dscores, dqkv, seq, nHead, headDim, g);
    }

    private static void KeyValueGradient(ArrayView<float> qkv, ArrayView<float> probs, ArrayView<float> mask,
        int hasMask,
        ArrayView<float> dy, ArrayView<float> dscores, ArrayView<float> dqkv, int seq, int nHead, int headDim, int g)
    {
        int u = g % seq, bh = g / seq, b = bh / nHead, h = bh % nHead, e = nHead * headDim;
        for (int d = 0; d < headDim; d++)
        {
            float dk = 0f, dv = 0f;
            for (int t = u; t < seq; t++)
            {
                long pt = (long)(bh * seq + t) * seq + u;
                dk += dscores[pt] * qkv[(long)(b * seq + t) * 3 * e + h * headDim + d];
                dv += probs[pt] * (hasMask != 0 ? mask[pt] : 1f) * dy[(long)(b * seq + t) * e + h * headDim + d];
            }
            dqkv[(long)(b * seq + u) * 3 * e + e + h * headDim + d] = dk;
            dqkv[(long)(b * seq + u) * 3 * e + 2 * e + h * headDim + d] = dv;
        }
    }
}
