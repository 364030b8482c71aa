namespace ScratchGpt.Backends.Reference;

/// <summary>
/// GPT-2's operations as plain float32 loops: no SIMD, no threads, no tiling, each op on one screen. It is the
/// oracle every other backend (the SIMD CPU backend included) is checked against, and the first place to read
/// the math. 16-bit weights are rounded to their precision and stored widened, so a reference run sees the same
/// weight values as a device that keeps them 16-bit.
/// </summary>
public sealed class ReferenceBackend : IBackend
{
    /// <param name="halfCache">A float16 KV cache: what is written is rounded as such a cache stores it
    /// (<see cref="Float16CacheValues"/>) and kept widened.</param>
    private sealed class Buffer(float[] data, bool halfCache = false) : IDeviceBuffer
    {
        public readonly float[] Data = data;
        public readonly bool HalfCache = halfCache;
        public long Length => Data.Length;
        public void Dispose() { }
    }

    private static float[] D(IDeviceBuffer b) => ((Buffer)b).Data;

    public string Kind => "reference";
    public string DeviceName => "plain float32 loops";

    public IDeviceBuffer Upload(ReadOnlySpan<float> data) => new Buffer(data.ToArray());

    /// <summary>The rounded values, widened: every weight is a float32 here.</summary>
    public double BytesPerWeight(WeightPrecision precision) => WeightPrecision.Float32.BytesPerWeight();

    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => new Buffer(WeightFormat.ToFloat16(data).Select(h => (float)h).ToArray()),
        WeightPrecision.BFloat16 =>
            new Buffer(WeightFormat.ToBFloat16(data).Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray()),
        WeightPrecision.Q8_0 => new Buffer(Loading.Q8_0.RoundTrip(data)),   // d · q, exactly
        WeightPrecision.Q4_0 => new Buffer(Loading.Q4_0.RoundTrip(data)),   // d · (q − 8), exactly
        _ => Upload(data),
    };

    public IDeviceBuffer Allocate(long length) => new Buffer(new float[length]);

    /// <summary>float32 or float16 (<see cref="Float16CacheValues"/>).</summary>
    public bool HoldsCache(KvCachePrecision precision) => true;

    /// <summary>Float16 values are held rounded but widened, as every value here.</summary>
    public int BytesPerCacheValue(KvCachePrecision precision) => sizeof(float);

    public IDeviceBuffer AllocateCache(long length, KvCachePrecision precision) =>
        new Buffer(new float[length], halfCache: precision == KvCachePrecision.Float16);
    public void Download(IDeviceBuffer src, long offset, Span<float> dst) =>
        D(src).AsSpan((int)offset, dst.Length).CopyTo(dst);
    public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count) =>
        Array.Copy(D(src), srcOffset, D(dst), dstOffset, count);

    /// <summary>x[t, i] = wte[ids[t], i] + wpe[start + t, i]</summary>
    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe,
        IDeviceBuffer x, int dim)
    {
        for (int t = 0; t < ids.Length; t++)
            for (int i = 0; i < dim; i++)
                D(x)[t * dim + i] = D(wte)[(long)ids[t] * dim + i] + D(wpe)[(startPosition + t) * dim + i];
    }

    /// <summary>y = (x − mean) / √(var + eps) · γ + β per row, biased variance.</summary>
    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim,
        float eps)
    {
        float[] xs = D(x), ys = D(y), g = D(gamma), b = D(beta);
        for (int r = 0; r < rows; r++)
        {
            float mean = 0, variance = 0;
            for (int i = 0; i < dim; i++) mean += xs[r * dim + i];
            mean /= dim;
            for (int i = 0; i < dim; i++) variance += (xs[r * dim + i] - mean) * (xs[r * dim + i] - mean);
            float rstd = 1f / MathF.Sqrt(variance / dim + eps);
            for (int i = 0; i < dim; i++) ys[r * dim + i] = (xs[r * dim + i] - mean) * rstd * g[i] + b[i];
        }
    }

    /// <summary>r = bias[j] + Σ_k x[r, k] · w[j, k]; then y = r, gelu_new(r) or y + r.</summary>
    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim,
        int outDim, MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        float[] xs = D(x), ws = D(w), ys = D(y);
        for (int r = 0; r < rows; r++)
            for (int j = 0; j < outDim; j++)
            {
                float s = bias is null ? 0f : D(bias)[j];
                for (int k = 0; k < inDim; k++) s += xs[(long)r * inDim + k] * ws[(long)j * inDim + k];
                long at = (long)r * outDim + j;
                ys[at] = epilogue switch { MatMulEpilogue.Gelu => GeluNew(s), MatMulEpilogue.AddToOutput => ys[at] + s,
                    _ => s };
            }
    }

    private static float GeluNew(float v) =>
        0.5f * v * (1f + MathF.Tanh(0.7978845608028654f * (v + 0.044715f * v * v * v)));

    public void Gelu(IDeviceBuffer x, long count)
    {
        for (long i = 0; i < count; i++) D(x)[i] = GeluNew(D(x)[i]);
    }

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count)
    {
        for (long i = 0; i < count; i++) D(x)[i] += D(y)[i];
    }

    /// <summary>k, v of the new rows into the head-major caches; then per head and row: softmax(q·kᵀ/√d) · v.</summary>
    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y,
        IDeviceBuffer? probs, int rows, int past, int nHead, int headDim)
    {
        float[] q = D(qkv), k = D(kCache), v = D(vCache), o = D(y);
        int e = nHead * headDim, capacity = IBackend.CacheCapacity(kCache, nHead, headDim), total = past + rows;
        Func<float, float> stored = ((Buffer)kCache).HalfCache ? Float16CacheValues.Round : x => x;
        for (int r = 0; r < rows; r++)
            for (int h = 0; h < nHead; h++)
                for (int d = 0; d < headDim; d++)
                {
                    long at = ((long)h * capacity + past + r) * headDim + d;   // cache[h, past + r, d]
                    k[at] = stored(q[(long)r * 3 * e + e + h * headDim + d]);
                    v[at] = stored(q[(long)r * 3 * e + 2 * e + h * headDim + d]);
                }
        var w = new float[total];
        for (int h = 0; h < nHead; h++)
            for (int r = 0; r < rows; r++)
            {
                int p = past + r;   // attends to positions 0..p
                float max = float.NegativeInfinity, sum = 0;
                for (int t = 0; t <= p; t++)
                {
                    float s = 0;
                    for (int d = 0; d < headDim; d++)
                        s += q[(long)r * 3 * e + h * headDim + d] * k[((long)h * capacity + t) * headDim + d];
                    w[t] = s / MathF.Sqrt(headDim);
                    max = Math.Max(max, w[t]);
                }
                for (int t = 0; t <= p; t++) { w[t] = MathF.Exp(w[t] - max); sum += w[t]; }
                for (int d = 0; d < headDim; d++)
                {
                    float acc = 0;
                    for (int t = 0; t <= p; t++) acc += w[t] / sum * v[((long)h * capacity + t) * headDim + d];
                    o[(long)r * e + h * headDim + d] = acc;
                }
                if (probs is not null)
                    for (int t = 0; t < total; t++)
                        D(probs)[((long)h * rows + r) * total + t] = t <= p ? w[t] / sum : 0f;
            }
    }

    /// <summary>The first index of the largest value (torch.argmax's tie rule).</summary>
    public int Argmax(IDeviceBuffer x, int n)
    {
        int best = 0;
        for (int i = 1; i < n; i++) if (D(x)[i] > D(x)[best]) best = i;
        return best;
    }

    public void Dispose() { }
}
