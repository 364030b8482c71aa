namespace ScratchGpt.Backends;

/// <summary>
/// The handful of operations a GPT-2 forward pass needs. The model (Model/Gpt2Model.cs) is written once
/// against this interface; the reference backend (plain loops, the oracle), the SIMD CPU backend and the
/// ILGPU backend (CUDA, OpenCL, ILGPU's CPU accelerator) implement it.
///
/// Every matrix is row-major. Weight matrices use the nn.Linear layout W[out, in] (the checkpoint's
/// Conv1D weights, stored [in, out], are transposed once at load), so that every output element is
/// one contiguous dot product: y[r, j] = b[j] + Σ_k x[r, k] · W[j, k]. The LM head is the same
/// operation with W = wte.
/// </summary>
public interface IBackend : IDisposable
{
    /// <summary>"reference", "cpu", "ilgpu-cpu", "opencl" or "cuda".</summary>
    string Kind { get; }

    /// <summary>The device's own name (e.g. "NVIDIA H100 80GB HBM3").</summary>
    string DeviceName { get; }

    IDeviceBuffer Upload(ReadOnlySpan<float> data);

    /// <summary>A weight matrix that may stay 16-bit on the device (widened to float32 inside the kernels).</summary>
    IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision);

    /// <summary>Bytes a matmul reads per weight uploaded with <paramref name="precision"/>, as this backend holds it:
    /// the format's own size (<see cref="WeightPrecisionSize.BytesPerWeight"/>), or more where it keeps values or
    /// scales widened.</summary>
    double BytesPerWeight(WeightPrecision precision);

    /// <summary>A zero-filled buffer of <paramref name="length"/> floats.</summary>
    IDeviceBuffer Allocate(long length);

    /// <summary>A zero-filled KV-cache buffer of <paramref name="length"/> values ([nHead, capacity, headDim], see
    /// <see cref="Attention"/>), stored in <paramref name="precision"/>. Only <see cref="Attention"/>,
    /// <see cref="Copy"/> (cache to cache) and <see cref="Download"/> (widened) take it. A backend that cannot store
    /// that precision (<see cref="HoldsCache"/> false) throws a <see cref="BackendException"/> saying so.</summary>
    IDeviceBuffer AllocateCache(long length, KvCachePrecision precision);

    /// <summary>Bytes a decode step's attention reads per KV-cache value stored in <paramref name="precision"/>, as
    /// this backend holds it: 2 for a float16 cache held as halves, 4 for float32 (or float16 values held
    /// widened).</summary>
    int BytesPerCacheValue(KvCachePrecision precision);

    /// <summary>Whether <see cref="AllocateCache"/> stores <paramref name="precision"/> (every backend stores
    /// float32).</summary>
    bool HoldsCache(KvCachePrecision precision);

    void Download(IDeviceBuffer src, long offset, Span<float> dst);
    /// <summary>dst[dstOffset ..] = src[srcOffset ..], <paramref name="count"/> elements.</summary>
    void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count);

    /// <summary>x[t, :] = wte[ids[t], :] + wpe[startPosition + t, :].</summary>
    void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe, IDeviceBuffer x,
        int dim);

    /// <summary>y[r, :] = (x[r, :] − mean) / sqrt(var + eps) · gamma + beta, biased variance per row.</summary>
    void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim,
        float eps);

    /// <summary>y[r, j] = bias[j] + Σ_k x[r, k] · w[j, k]; w is [outDim, inDim]; bias may be null.
    /// <paramref name="epilogue"/> fuses what the block does next into the same launch: gelu_new of the result, or
    /// adding it to what y holds (the residual connection).</summary>
    void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim, int outDim,
        MatMulEpilogue epilogue = MatMulEpilogue.Store);

    /// <summary>In place: x = 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))), GPT-2's gelu_new.</summary>
    void Gelu(IDeviceBuffer x, long count);

    /// <summary>In place: x += y.</summary>
    void Add(IDeviceBuffer x, IDeviceBuffer y, long count);

    /// <summary>Index of the largest of the first <paramref name="n"/> values of <paramref name="x"/> (the lowest
    /// index on ties, as torch.argmax), computed where the data lives: a greedy step brings back one int.</summary>
    int Argmax(IDeviceBuffer x, int n);

    /// <summary>
    /// Causal multi-head self-attention over a KV cache.
    /// qkv [rows, 3·E] holds q | k | v for the new positions past .. past+rows−1. Their k and v are first
    /// written into kCache / vCache at those positions; then for each head h and row r
    /// (absolute position p = past + r): w = softmax(q·kᵀ / √headDim over positions 0..p), y = w·v.
    /// y is [rows, E] with heads side by side. If <paramref name="probs"/> is given, w is stored there as
    /// [nHead, rows, past+rows] (future positions exactly 0), as output_attentions returns it.
    /// The caches are head-major, [nHead, capacity, headDim] with capacity = length / E (see
    /// <see cref="CacheCapacity"/>): one head's keys are one contiguous block, read front to back at every
    /// decode step.
    /// </summary>
    void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y, IDeviceBuffer? probs,
        int rows, int past, int nHead, int headDim);

    /// <summary>How many positions a KV-cache buffer [nHead, capacity, headDim] holds.</summary>
    static int CacheCapacity(IDeviceBuffer cache, int nHead, int headDim) =>
        (int)(cache.Length / ((long)nHead * headDim));
}
