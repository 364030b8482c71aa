using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// Causal self-attention over a KV cache, for a prompt (rows > 1) or a decode step (rows = 1).
///   qkv [rows, 3E] holds q | k | v per row; y [rows, E]; E = nHead · headDim.
///   The caches are head-major [nHead, capacity, headDim]: one head's keys (and values) are one contiguous block,
///   read front to back at every decode step. Row r is absolute position p = past + r and attends to 0..p.
/// </summary>
public static class Attention
{
    /// <summary>Threads per (row, head) group.</summary>
    public const int Threads = 64;
    /// <summary>The largest head_dim the registers of <see cref="Forward"/> hold (GPT-2's is 64).</summary>
    public const int MaxHeadDim = 128;
    private const int PerThread = MaxHeadDim / Threads;

    /// <summary>k and v of the new rows into the caches at positions past .. past + rows − 1. One thread per
    /// element.</summary>
    public static void StoreKeysValues(ArrayView<float> qkv, ArrayView<float> kCache, ArrayView<float> vCache,
        int rows, int past, int nHead, int headDim, int capacity)
    {
        int e = nHead * headDim;
        for (int g = Grid.GlobalIndex.X; g < rows * e; g += GridStride.Threads)
        {
            int r = g / e, i = g % e, h = i / headDim, d = i % headDim;
            long at = ((long)h * capacity + past + r) * headDim + d;   // cache[h, past + r, d]
            kCache[at] = qkv[(long)r * 3 * e + e + i];
            vCache[at] = qkv[(long)r * 3 * e + 2 * e + i];
        }
    }

    /// <summary>
    /// A group of <see cref="Threads"/> per (row, head) (grid-stride over the rows · nHead pairs), walking the
    /// positions 0..p in chunks of <see cref="Threads"/> with an online softmax: a running max m and sum l, the output
    /// so far rescaled by exp(m_old − m_new) whenever m grows, so no score array of the sequence's length is needed.
    ///   1. thread i scores position t0 + i:        s = q·k_t / √headDim
    ///   2. every thread reads the chunk's scores:   m_new = max(m, s…), w_t = exp(s_t − m_new)
    ///   3. thread i owns output dims i, i + 64:     acc_d = acc_d · exp(m − m_new) + Σ_t w_t v_t[d]
    /// With wantProbs ≠ 0 a last pass writes the softmax weights to probs [nHead, rows, past + rows] (future = 0).
    /// </summary>
    public static void Forward(ArrayView<float> qkv, ArrayView<float> kCache, ArrayView<float> vCache,
        ArrayView<float> y,
        ArrayView<float> probs, int wantProbs, int rows, int past, int nHead, int headDim, int capacity)
    {
        var q = SharedMemory.Allocate<float>(MaxHeadDim);   // this row's query for head h
        var w = SharedMemory.Allocate<float>(Threads);      // the chunk's scores, then their weights
        var acc = LocalMemory.Allocate<float>(PerThread);
        for (int item = Grid.IdxX; item < rows * nHead; item += Grid.DimX)
            RowHead(qkv, kCache, vCache, y, probs, wantProbs, rows, past, nHead, headDim, capacity, item / nHead,
                item % nHead, q, w, acc);
    }

    private static void RowHead(ArrayView<float> qkv, ArrayView<float> kCache, ArrayView<float> vCache,
        ArrayView<float> y,
        ArrayView<float> probs, int wantProbs, int rows, int past, int nHead, int headDim, int capacity, int r, int h,
        ArrayView<float> q, ArrayView<float> w, ArrayView<float> acc)
    {
        int tid = Group.IdxX, e = nHead * headDim, p = past + r, total = past + rows;
        long head = (long)h * capacity * headDim;           // [capacity, headDim] block of head h
        float scale = XMath.Sqrt((float)headDim);
        for (int d = tid; d < headDim; d += Threads) q[d] = qkv[(long)r * 3 * e + h * headDim + d];
        for (int i = 0; i < PerThread; i++) acc[i] = 0f;
        Group.Barrier();

        float m = float.NegativeInfinity, l = 0f;
        for (int t0 = 0; t0 <= p; t0 += Threads)
        {
            int n = XMath.Min(p + 1 - t0, Threads);
            if (tid < n)
            {
                long k = head + (long)(t0 + tid) * headDim;
                float s = 0f;
                for (int d = 0; d < headDim; d++) s += q[d] * kCache[k + d];
                w[tid] = s / scale;
            }
            Group.Barrier();
            float mNew = m;
            for (int t = 0; t < n; t++) mNew = XMath.Max(mNew, w[t]);
            float correction = XMath.Exp(m - mNew);   // 0 on the first chunk (m = −∞)
            Group.Barrier();                           // all have read the scores before they become weights
            if (tid < n) w[tid] = XMath.Exp(w[tid] - mNew);
            Group.Barrier();
            l *= correction;
            for (int t = 0; t < n; t++) l += w[t];
            for (int i = 0; i < PerThread; i++)
            {
                int d = tid + i * Threads;
                if (d < headDim)
                {
                    float a = acc[i] * correction;
                    for (int t = 0; t < n; t++) a += w[t] * vCache[head + (long)(t0 + t) * headDim + d];
                    acc[i] = a;
                }
            }
            m = mNew;
            Group.Barrier();                           // all are done with w before the next chunk's scores
        }
        for (int i = 0; i < PerThread; i++)
        {
            int d = tid + i * Threads;
            if (d < headDim) y[(long)r * e + h * headDim + d] = acc[i] / l;
        }
        if (wantProbs != 0)
        {
            long row = ((long)h * rows + r) * total;
            for (int t = tid; t < total; t += Threads)
            {
                float weight = 0f;
                if (t <= p)
                {
                    long k = head + (long)t * headDim;
                    float s = 0f;
                    for (int d = 0; d < headDim; d++) s += q[d] * kCache[k + d];
                    weight = XMath.Exp(s / scale - m) / l;
                }
                probs[row + t] = weight;
            }
        }
        Group.Barrier();   // all are done with q before the next (row, head) overwrites it
    }
}
