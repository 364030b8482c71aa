using System.Numerics.Tensors;

namespace ScratchGpt.Training.Kernels;

/// <summary>
/// Causal multi-head self-attention over a batch of whole sequences, forward and backward.
/// qkv is c_attn's output, [B·T, 3E] with q, k, v side by side; head h uses columns h·D..h·D+D of each.
///
///     s[t, u] = q_t · k_u / √D   for u ≤ t          p[t, :] = softmax(s[t, :])
///     y_t     = Σ_u p[t, u] v_u                       probabilities kept: [B, H, T, T]
///
/// Backward, with dp[t, u] = dy_t · v_u:
///
///     dv_u += Σ_t p[t, u] dy_t
///     ds[t, u] = p[t, u] (dp[t, u] − Σ_u' p[t, u'] dp[t, u'])      (softmax's Jacobian)
///     dq_t = Σ_u ds[t, u] k_u / √D,      dk_u += Σ_t ds[t, u] q_t / √D
///
/// With attention dropout, a mask m (0 or 1/(1 − p) per weight) scales the probabilities before they weight
/// v: y_t = Σ_u p[t, u] m[t, u] v_u; the backward then uses dp ⊙ m and p ⊙ m where it used dp and p.
///
/// Each (sequence, head) pair is independent, so they run in parallel.
/// </summary>
public static class AttentionOp
{
    public static void Forward(ReadOnlyMemory<float> qkv, Memory<float> y, Memory<float> probs, int batch, int seq,
    int nHead, int headDim,
        ReadOnlyMemory<float> dropMask = default)
    {
        int E = nHead * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        Parallel.For(0, batch * nHead, bh =>
        {
            int b = bh / nHead, h = bh % nHead;
            var q = qkv.Span; var ys = y.Span;
            var p = probs.Span.Slice(bh * seq * seq, seq * seq);
            for (int t = 0; t < seq; t++)
            {
                var qt = q.Slice((b * seq + t) * 3 * E + h * headDim, headDim);
                var row = p.Slice(t * seq, seq);
                float max = float.NegativeInfinity;
                for (int u = 0; u <= t; u++)
                {
                    row[u] = TensorPrimitives.Dot(qt,
                        q.Slice((b * seq + u) * 3 * E + E + h * headDim, headDim)) * scale;
                    max = MathF.Max(max, row[u]);
                }
                float sum = 0;
                for (int u = 0; u <= t; u++) { row[u] = MathF.Exp(row[u] - max); sum += row[u]; }
                for (int u = 0; u <= t; u++) row[u] /= sum;
                row[(t + 1)..].Clear();
                var yt = ys.Slice((b * seq + t) * E + h * headDim, headDim);
                yt.Clear();
                var m = dropMask.IsEmpty ? default : dropMask.Span.Slice(bh * seq * seq + t * seq, seq);
                for (int u = 0; u <= t; u++)
                    TensorPrimitives.MultiplyAdd(q.Slice((b * seq + u) * 3 * E + 2 * E + h * headDim, headDim),
                        m.IsEmpty ? row[u] : row[u] * m[u], yt, yt);
            }
        });
    }

    /// <summary>Writes the whole of dqkv [B·T, 3E] from dy [B·T, E].</summary>
    public static void Backward(ReadOnlyMemory<float> qkv, ReadOnlyMemory<float> probs, ReadOnlyMemory<float> dy,
        Memory<float> dqkv, int batch, int seq, int nHead, int headDim, ReadOnlyMemory<float> dropMask = default)
    {
        int E = nHead * headDim;
        float scale = 1f / MathF.Sqrt(headDim);
        for (int r = 0; r < batch * seq; r++) dqkv.Span.Slice(r * 3 * E, 3 * E).Clear();
        Parallel.For(0, batch * nHead, bh =>
        {
            int b = bh / nHead, h = bh % nHead;
            var q = qkv.Span; var d = dqkv.Span; var dys = dy.Span;
            var p = probs.Span.Slice(bh * seq * seq, seq * seq);
            Span<float> dp = seq <= 2048 ? stackalloc float[seq] : new float[seq];
            for (int t = 0; t < seq; t++)
            {
                var row = p.Slice(t * seq, t + 1);
                var m = dropMask.IsEmpty ? default : dropMask.Span.Slice(bh * seq * seq + t * seq, t + 1);
                var dyt = dys.Slice((b * seq + t) * E + h * headDim, headDim);
                float weighted = 0;
                for (int u = 0; u <= t; u++)
                {
                    int vOff = (b * seq + u) * 3 * E + 2 * E + h * headDim;
                    float keep = m.IsEmpty ? 1f : m[u];
                    dp[u] = TensorPrimitives.Dot(dyt, q.Slice(vOff, headDim)) * keep;
                    // dv_u
                    TensorPrimitives.MultiplyAdd(dyt, row[u] * keep, d.Slice(vOff, headDim), d.Slice(vOff, headDim));
                    weighted += row[u] * dp[u];
                }
                var qt = q.Slice((b * seq + t) * 3 * E + h * headDim, headDim);
                var dqt = d.Slice((b * seq + t) * 3 * E + h * headDim, headDim);
                for (int u = 0; u <= t; u++)
                {
                    float ds = row[u] * (dp[u] - weighted) * scale;
                    int kOff = (b * seq + u) * 3 * E + E + h * headDim;
                    TensorPrimitives.MultiplyAdd(q.Slice(kOff, headDim), ds, dqt, dqt);                      // dq_t
                    TensorPrimitives.MultiplyAdd(qt, ds, d.Slice(kOff, headDim), d.Slice(kOff, headDim));      // dk_u
                }
            }
        });
    }
}
