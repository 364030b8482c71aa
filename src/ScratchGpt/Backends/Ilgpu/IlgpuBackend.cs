using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Runtime;
using ScratchGpt.Kernels;

namespace ScratchGpt.Backends.Ilgpu;

/// <summary>
/// The model's operations (and the trainer's) as launches of the C# kernels in kernels/ on one ILGPU accelerator:
/// CUDA, OpenCL, or ILGPU's CPU accelerator. Every kernel is compiled once, when the backend opens
/// (<see cref="DeviceKernels"/>); a launch is a typed call with its geometry. Launches and copies go through the
/// accelerator's default stream, so they run in the order they are made.
/// </summary>
public sealed class IlgpuBackend : IBackend
{
    private readonly Accelerator _accelerator;
    private readonly DeviceKernels _k;
    /// <summary>The most groups a launch uses; kernels walk the rest of their work with a grid stride. A GPU gets
    /// 32 per multiprocessor; ILGPU's CPU accelerator, where each group costs milliseconds of
    /// thread hand-offs, 2.</summary>
    private readonly int _maxGroups;
    private long _liveBuffers, _liveBytes;

    /// <summary>"cuda", "opencl" or "ilgpu-cpu".</summary>
    public string Kind { get; }
    public string DeviceName => _accelerator.Name;

    /// <summary>Matmuls of up to <see cref="PerThreadRows"/> rows as one barrier-free matvec per row
    /// (<see cref="Kernels.MatMul.VectorPerThread"/>, a thread per column): the default on ILGPU's CPU accelerator,
    /// where a group barrier costs about a millisecond.</summary>
    public bool ThreadPerColumn { get; set; }

    /// <summary>The most rows <see cref="ThreadPerColumn"/> covers: a batched decode step (Gpt2Model's 8
    /// sequences).</summary>
    public const int PerThreadRows = 8;

    /// <summary>Device buffers alive now, and their bytes (tests check that nothing leaks).</summary>
    public long LiveBuffers => Interlocked.Read(ref _liveBuffers);
    public long LiveBytes => Interlocked.Read(ref _liveBytes);

    internal IlgpuBackend(Accelerator accelerator, string kind)
    {
        _accelerator = accelerator;
        Kind = kind;
        bool cpu = accelerator.AcceleratorType == AcceleratorType.CPU;
        _maxGroups = Math.Max(1, accelerator.NumMultiprocessors) * (cpu ? 2 : 32);
        ThreadPerColumn = cpu;
        try { _k = new DeviceKernels(accelerator); }
        catch (Exception e)
        {
            accelerator.Dispose();
            throw new BackendException($"{kind}: compiling the kernels failed: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    internal void Track(int buffers, long bytes)
    {
        Interlocked.Add(ref _liveBuffers, buffers);
        Interlocked.Add(ref _liveBytes, bytes);
    }

    private static IlgpuBuffer B(IDeviceBuffer b) => (IlgpuBuffer)b;

    /// <summary>Groups of <paramref name="threads"/> for a thread per item (at most
    /// <see cref="_maxGroups"/>).</summary>
    private KernelConfig Each(long items, int threads = 256) => PerGroup((items + threads - 1) / threads, threads);

    /// <summary>A group of <paramref name="threads"/> per item (a row, a column), at most
    /// <see cref="_maxGroups"/>.</summary>
    private KernelConfig PerGroup(long items, int threads) => new((int)Math.Clamp(items, 1, _maxGroups), threads);

    /// <summary>Groups of 16 × 16 threads for the 64 × 64 output blocks of the tiled matmul and gemm.</summary>
    private KernelConfig Blocks(int columns, int rows)
    {
        long blocks = (long)((columns + Kernels.MatMul.Block - 1) / Kernels.MatMul.Block) * (
            (rows + Kernels.MatMul.Block - 1) / Kernels.MatMul.Block);
        return new(new Index2D((int)Math.Clamp(blocks, 1, _maxGroups), 1),
            new Index2D(Kernels.MatMul.GroupSide, Kernels.MatMul.GroupSide));
    }

    // ---- memory ----------------------------------------------------------------------------------------------------

    public IDeviceBuffer Upload(ReadOnlySpan<float> data)
    {
        var b = new IlgpuBuffer(this, _accelerator, data.Length, WeightPrecision.Float32);
        Write(b, data);
        return b;
    }

    /// <summary>16-bit weights stay 16-bit; Q8_0 and Q4_0 are held dequantized, as float32.</summary>
    public double BytesPerWeight(WeightPrecision precision) =>
        (precision is WeightPrecision.Q8_0 or WeightPrecision.Q4_0 ? WeightPrecision.Float32 : precision)
        .BytesPerWeight();

    /// <summary>Float16 and bfloat16 weights stay 16-bit on the device; the weight kernels widen them.</summary>
    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision)
    {
        if (precision == WeightPrecision.Float32) return Upload(data);
        // The device kernels read float32 / float16 / bfloat16 weights; Q8_0 and Q4_0 arrive as their dequantized
        // values.
        if (precision == WeightPrecision.Q8_0) return Upload(Loading.Q8_0.RoundTrip(data));
        if (precision == WeightPrecision.Q4_0) return Upload(Loading.Q4_0.RoundTrip(data));
        var b = new IlgpuBuffer(this, _accelerator, data.Length, precision);
        var bits = WeightFormat.SixteenBit(data, precision);
        if (bits.Length > 0) b.Bits.SubView(0, bits.Length).CopyFromCPU(bits);
        return b;
    }

    public IDeviceBuffer Allocate(long length)
    {
        var b = new IlgpuBuffer(this, _accelerator, length, WeightPrecision.Float32);
        Zero(b, length);
        return b;
    }

    /// <summary>float32 only: the device kernels have no float16 cache to read.</summary>
    public bool HoldsCache(KvCachePrecision precision) => precision == KvCachePrecision.Float32;

    public int BytesPerCacheValue(KvCachePrecision precision) => sizeof(float);

    /// <summary>A float32 cache; any other precision is a one-line error naming the flag to use.</summary>
    public IDeviceBuffer AllocateCache(long length, KvCachePrecision precision) =>
        HoldsCache(precision)
            ? Allocate(length)
            : throw new BackendException($"{Kind}: the float16 KV cache runs on the cpu and reference devices; " +
                "use --kv-cache f32 here");

    /// <summary>dst[0 ..] = src (host → device).</summary>
    public void Write(IDeviceBuffer dst, ReadOnlySpan<float> src)
    {
        if (src.Length > dst.Length)
            throw new ArgumentException($"writing {src.Length} floats into a buffer of {dst.Length}");
        if (src.Length > 0) B(dst).Slice(0, src.Length).CopyFromCPU(src);
    }

    public void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        if (dst.Length > 0) B(src).Slice(offset, dst.Length).CopyToCPU(dst);
    }

    public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count)
    {
        if (count > 0) B(src).Slice(srcOffset, count).CopyTo(B(dst).Slice(dstOffset, count));
    }

    public void Zero(IDeviceBuffer buffer, long count)
    {
        if (count > 0) B(buffer).Slice(0, count).MemSetToZero();
    }

    // Small buffers for token ids in and the argmax out, reused so that a decode step allocates no device memory
    // (freeing waits for the whole device on CUDA). A bag, as sessions on several threads may share a backend.
    private readonly ConcurrentBag<IlgpuBuffer> _scratch = new();

    private IlgpuBuffer Rent(int length)
    {
        if (_scratch.TryTake(out var b))
        {
            if (b.Length >= length) return b;
            b.Dispose();
        }
        return new IlgpuBuffer(this, _accelerator, Math.Max(length, 64), WeightPrecision.Float32);
    }

    // ---- the forward pass ------------------------------------------------------------------------------------------

    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe,
        IDeviceBuffer x, int dim)
    {
        var idBuffer = Rent(ids.Length);
        Write(idBuffer, MemoryMarshal.Cast<int, float>(ids));   // the ids' bits, read back as ints by the kernel
        Embedding(idBuffer, startPosition, ids.Length, wte, wpe, x, ids.Length, dim);
        _scratch.Add(idBuffer);
    }

    /// <summary>x[t] = wte[ids[t]] + wpe[start + t mod seq] for ids already on the device (a training batch restarts
    /// the positions every <paramref name="seq"/> rows).</summary>
    public void Embedding(IDeviceBuffer ids, int start, int seq, IDeviceBuffer wte, IDeviceBuffer wpe, IDeviceBuffer x,
        int rows, int dim)
    {
        var config = Each((long)rows * dim);
        var w = B(wte);
        switch (w.Precision)
        {
            case WeightPrecision.Float16:
                _k.Float16.Embedding(config, B(ids).Ints, start, seq, w.Weights<Float16Weight>(), B(wpe).View,
                    B(x).View, rows, dim);
                break;
            case WeightPrecision.BFloat16:
                _k.BFloat16.Embedding(config, B(ids).Ints, start, seq, w.Weights<BFloat16Weight>(), B(wpe).View,
                    B(x).View, rows, dim);
                break;
            default:
                _k.Float32.Embedding(config, B(ids).Ints, start, seq, w.Weights<Float32Weight>(), B(wpe).View,
                    B(x).View, rows, dim);
                break;
        }
    }

    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim,
        float eps) =>
        _k.LayerNorm(PerGroup(rows, Kernels.LayerNorm.Threads), B(x).View, B(gamma).View, B(beta).View, B(y).View,
            B(y).View, B(y).View, 0, rows, dim, eps);

    /// <summary>LayerNorm that also keeps each row's mean and 1/√(var + eps) for the backward pass.</summary>
    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, IDeviceBuffer mean,
        IDeviceBuffer rstd, int rows, int dim, float eps) =>
        _k.LayerNorm(PerGroup(rows, Kernels.LayerNorm.Threads), B(x).View, B(gamma).View, B(beta).View, B(y).View,
            B(mean).View, B(rstd).View, 1, rows, dim, eps);

    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim,
        int outDim, MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        var b = bias is null ? B(x).View : B(bias).View;   // any view will do when there is no bias
        int hasBias = bias is null ? 0 : 1, code = (int)epilogue;
        var weights = B(w);
        switch (weights.Precision)
        {
            case WeightPrecision.Float16: Launch(_k.Float16, weights.Weights<Float16Weight>()); break;
            case WeightPrecision.BFloat16: Launch(_k.BFloat16, weights.Weights<BFloat16Weight>()); break;
            default: Launch(_k.Float32, weights.Weights<Float32Weight>()); break;
        }

        void Launch<TWeight>(WeightKernels<TWeight> k, ArrayView<TWeight> wv) where TWeight : unmanaged, IWeight
        {
            if (ThreadPerColumn && rows <= PerThreadRows)
                for (int r = 0; r < rows; r++)
                    k.MatVecPerThread(Each(outDim), B(x).Slice((long)r * inDim, inDim), wv, b, hasBias,
                        B(y).Slice((long)r * outDim, outDim), inDim, outDim, code);
            else if (rows == 1)
                k.MatVec(PerGroup(outDim, Kernels.MatMul.VectorThreads), B(x).View, wv, b, hasBias, B(y).View, inDim,
                    outDim, code);
            else k.MatMulTiled(Blocks(outDim, rows), B(x).View, wv, b, hasBias, B(y).View, rows, inDim, outDim, code);
        }
    }

    public void Gelu(IDeviceBuffer x, long count) => _k.Gelu(Each(count), B(x).View, (int)count);

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count) =>
        _k.Add(Each(count), B(x).View, B(y).View, (int)count);

    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y,
        IDeviceBuffer? probs, int rows, int past, int nHead, int headDim)
    {
        if (headDim > Kernels.Attention.MaxHeadDim)
            throw new BackendException($"{Kind} attention: head_dim {headDim} is larger than the kernel's MaxHeadDim " +
                $"({Kernels.Attention.MaxHeadDim})");
        int e = nHead * headDim, capacity = IBackend.CacheCapacity(kCache, nHead, headDim);
        _k.StoreKeysValues(Each((long)rows * e), B(qkv).View, B(kCache).View, B(vCache).View, rows, past, nHead,
            headDim, capacity);
        _k.Attention(PerGroup((long)rows * nHead, Kernels.Attention.Threads), B(qkv).View, B(kCache).View,
            B(vCache).View, B(y).View, B(probs ?? y).View, probs is null ? 0 : 1, rows, past, nHead, headDim, capacity);
    }

    public int Argmax(IDeviceBuffer x, int n)
    {
        var result = Rent(1);
        _k.Argmax(PerGroup(1, Kernels.Argmax.Threads), B(x).View, n, result.Ints);
        Span<float> bits = stackalloc float[1];
        Download(result, 0, bits);
        _scratch.Add(result);
        return BitConverter.SingleToInt32Bits(bits[0]);
    }

    // ---- training (DeviceTrainingModel) ----------------------------------------------------------------------------

    /// <summary>c[m, n] (+)= A·B with A(i, k) = a[i·aRow + k·aCol], B(k, j) = b[k·bRow + j·bCol].</summary>
    public void Gemm(IDeviceBuffer a, int aRow, int aCol, IDeviceBuffer b, int bRow, int bCol, IDeviceBuffer c, int m,
        int n, int k, bool accumulate) =>
        _k.Gemm(Blocks(n, m), B(a).View, aRow, aCol, B(b).View, bRow, bCol, B(c).View, m, n, k, accumulate ? 1 : 0);

    /// <summary>db[j] += Σ_r dy[r, j].</summary>
    public void ColumnSums(IDeviceBuffer dy, IDeviceBuffer db, int rows, int cols) =>
        _k.ColumnSums(Each(cols, 64), B(dy).View, B(db).View, rows, cols);

    /// <summary>d *= gelu_new'(x).</summary>
    public void GeluBackward(IDeviceBuffer x, IDeviceBuffer d, int n) =>
        _k.GeluBackward(Each(n), B(x).View, B(d).View, n);

    /// <summary>x *= y (a dropout mask).</summary>
    public void Multiply(IDeviceBuffer x, IDeviceBuffer y, int n) => _k.Multiply(Each(n), B(x).View, B(y).View, n);

    public void LayerNormBackward(IDeviceBuffer dy, IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer mean,
        IDeviceBuffer rstd, IDeviceBuffer dx, int rows, int dim, bool accumulate) =>
        _k.LayerNormBackward(PerGroup(rows, Kernels.LayerNorm.Threads), B(dy).View, B(x).View, B(gamma).View,
            B(mean).View, B(rstd).View, B(dx).View, rows, dim, accumulate ? 1 : 0);

    public void LayerNormParameterGradients(IDeviceBuffer dy, IDeviceBuffer x, IDeviceBuffer mean, IDeviceBuffer rstd,
        IDeviceBuffer dgamma, IDeviceBuffer dbeta, int rows, int dim) =>
        _k.LayerNormParameterGradients(Each(dim, 64), B(dy).View, B(x).View, B(mean).View, B(rstd).View, B(dgamma).View,
            B(dbeta).View, rows, dim);

    /// <summary>Attention over whole sequences; <paramref name="mask"/> null = no dropout.</summary>
    public void AttentionTrain(IDeviceBuffer qkv, IDeviceBuffer y, IDeviceBuffer probs, IDeviceBuffer? mask, int batch,
        int seq, int nHead, int headDim) =>
        _k.AttentionTrain(Each((long)batch * nHead * seq, 64), B(qkv).View, B(y).View, B(probs).View,
            B(mask ?? probs).View, mask is null ? 0 : 1, batch, seq, nHead, headDim);

    /// <summary>dqkv from dy: the query pass (which leaves dscores), then the key/value pass.</summary>
    public void AttentionBackward(IDeviceBuffer qkv, IDeviceBuffer probs, IDeviceBuffer? mask, IDeviceBuffer dy,
        IDeviceBuffer dscores, IDeviceBuffer dqkv, int batch, int seq, int nHead, int headDim)
    {
        var config = Each((long)batch * nHead * seq, 64);
        var m = B(mask ?? probs).View;
        int hasMask = mask is null ? 0 : 1;
        _k.AttentionBackwardQuery(config, B(qkv).View, B(probs).View, m, hasMask, B(dy).View, B(dscores).View,
            B(dqkv).View, batch, seq, nHead, headDim);
        _k.AttentionBackwardKeyValue(config, B(qkv).View, B(probs).View, m, hasMask, B(dy).View, B(dscores).View,
            B(dqkv).View, batch, seq, nHead, headDim);
    }

    public void EmbeddingBackward(IDeviceBuffer ids, IDeviceBuffer dx, IDeviceBuffer dwte, IDeviceBuffer dwpe, int rows,
        int seq, int dim) =>
        _k.EmbeddingBackward(Each(dim, 64), B(ids).Ints, B(dx).View, B(dwte).View, B(dwpe).View, rows, seq, dim);

    /// <summary>Per-row loss into loss[rowOffset ..]; with gradWeight ≠ 0 the logits become dlogits in place.</summary>
    public void CrossEntropy(IDeviceBuffer logits, IDeviceBuffer targets, IDeviceBuffer loss, int rows, int rowOffset,
        int vocab, float gradWeight) =>
        _k.CrossEntropy(PerGroup(rows, Kernels.CrossEntropy.Threads), B(logits).View, B(targets).Ints, B(loss).View,
            rows, rowOffset, vocab, gradWeight, gradWeight != 0f ? 1 : 0);

    public void AdamW(IDeviceBuffer p, IDeviceBuffer grad, IDeviceBuffer m, IDeviceBuffer v, int n, AdamWStep step) =>
        _k.AdamW(Each(n, 64), B(p).View, B(grad).View, B(m).View, B(v).View, n, step);

    /// <summary>partial[slot · 64 + g]: the 64 partial sums of x[i]²
    /// (<see cref="Optimizer.SumSquaresGroups"/>).</summary>
    public void SumSquares(IDeviceBuffer x, int n, IDeviceBuffer partial, int slot) =>
        _k.SumSquares(PerGroup(Optimizer.SumSquaresGroups, Optimizer.SumSquaresThreads), B(x).View, n, B(partial).View,
            slot);

    /// <summary>Waits until every launch and copy made so far has finished (for timing).</summary>
    public void Synchronize() => _accelerator.Synchronize();

    public void Dispose()
    {
        while (_scratch.TryTake(out var b)) b.Dispose();
        _accelerator.Dispose();
    }
}
