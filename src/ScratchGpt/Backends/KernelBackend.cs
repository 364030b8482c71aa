using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ScratchGpt.Backends;

/// <summary>
/// The forward pass's operations as launches of the kernels in kernels/, written once for the GPU backends.
/// A subclass (<see cref="OpenCl.OpenClBackend"/>, <see cref="Cuda.CudaDevice"/>) supplies only what differs
/// between the APIs: allocating a buffer, copying bytes in and out, zeroing, and launching a kernel by name.
/// Launch geometry is given in work-groups (CUDA blocks) of a number of work-items (threads).
/// </summary>
public abstract unsafe class KernelBackend : IKernelRunner
{
    /// <summary>The kernels the forward pass launches; backends create them when they open, so a missing one fails early.</summary>
    protected static readonly string[] ForwardKernels =
        ["embedding", "gelu", "add_inplace", "copy_floats", "layernorm", "matmul_tiled", "matvec", "kv_store", "attention", "argmax"];

    public abstract string Kind { get; }
    public abstract string DeviceName { get; }

    /// <summary>A buffer of <paramref name="length"/> elements stored as <paramref name="format"/> (4 or 2 bytes each), contents undefined.</summary>
    protected abstract IDeviceBuffer NewBuffer(long length, int format = WeightFormat.Float32);

    /// <summary>How <paramref name="buffer"/> stores its elements (<see cref="WeightFormat"/>).</summary>
    protected abstract int FormatOf(IDeviceBuffer buffer);

    /// <summary>Copies <paramref name="bytes"/> bytes from host memory to the start of <paramref name="dst"/>, synchronously.</summary>
    protected abstract void WriteBytes(IDeviceBuffer dst, void* src, long bytes);

    public abstract void Download(IDeviceBuffer src, long offset, Span<float> dst);
    public abstract void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count);
    public abstract void Zero(IDeviceBuffer buffer, long count);
    public abstract void Run(string name, long groupsX, long groupsY, int localX, int localY, params object[] args);

    /// <summary>Releases the context and whatever else the API holds; the buffers are already released.</summary>
    protected abstract void DisposeDevice();

    public void Dispose()
    {
        while (_scratch.TryTake(out var b)) b.Dispose();
        DisposeDevice();
    }

    // Small buffers for the token ids going in and the argmax coming out, reused from call to call so that a decode
    // step neither allocates nor frees device memory (cuMemFree waits for the whole device to finish). A bag rather
    // than one buffer because sessions on several threads may share a backend. Reuse is safe because every
    // command goes into one in-order queue: a later write into a returned buffer runs after the kernel that read it.
    private readonly ConcurrentBag<IDeviceBuffer> _scratch = new();

    private IDeviceBuffer RentScratch(int length)
    {
        if (_scratch.TryTake(out var b))
        {
            if (b.Length >= length) return b;
            b.Dispose();
        }
        return NewBuffer(Math.Max(length, 64));
    }

    private void ReturnScratch(IDeviceBuffer b) => _scratch.Add(b);

    // ---- memory ------------------------------------------------------------------------------------

    public IDeviceBuffer Upload(ReadOnlySpan<float> data)
    {
        var b = NewBuffer(data.Length);
        Write(b, data);
        return b;
    }

    /// <summary>Float16/bfloat16 weights stay 16-bit on the device; kernels/weights.cl widens them in the kernels.</summary>
    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision)
    {
        if (precision == WeightPrecision.Float32) return Upload(data);
        var bits = WeightFormat.SixteenBit(data, precision);
        var b = NewBuffer(bits.Length, WeightFormat.Code(precision));
        if (bits.Length > 0) fixed (ushort* p = bits) WriteBytes(b, p, bits.Length * 2L);
        return b;
    }

    public IDeviceBuffer Allocate(long length)
    {
        var b = NewBuffer(length);
        Zero(b, length);
        return b;
    }

    public void Write(IDeviceBuffer dst, ReadOnlySpan<float> src)
    {
        if (src.Length > dst.Length) throw new ArgumentException($"writing {src.Length} floats into a buffer of {dst.Length}");
        if (src.Length > 0) fixed (float* p = src) WriteBytes(dst, p, src.Length * 4L);
    }

    // ---- the forward pass's kernels ---------------------------------------------------------------------

    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe, IDeviceBuffer x, int dim)
    {
        var idBuf = RentScratch(ids.Length);
        Write(idBuf, MemoryMarshal.Cast<int, float>(ids));   // the ids' bits, read as ints by the kernel
        Run("embedding", IKernelRunner.Groups((long)ids.Length * dim, 64), 1, 64, 1, idBuf, startPosition, ids.Length, wte, FormatOf(wte), wpe, x, ids.Length, dim);
        ReturnScratch(idBuf);
    }

    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim, float eps) =>
        Run("layernorm", rows, 1, 128, 1, x, gamma, beta, y, y, y, 0, dim, eps);   // one work-group per row; no saved statistics

    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim, int outDim,
        MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        var b = bias ?? w;   // any valid buffer when there is no bias
        int hasBias = bias is null ? 0 : 1;
        if (rows == 1) Run("matvec", outDim, 1, 64, 1, x, w, FormatOf(w), b, hasBias, y, inDim, outDim, (int)epilogue);
        // rows > 1: 64 x 64 blocks of y, 16 x 16 work-items each (kernels/matmul.cl)
        else Run("matmul_tiled", IKernelRunner.Groups(outDim, 64), IKernelRunner.Groups(rows, 64), 16, 16, x, w, FormatOf(w), b, hasBias, y, rows, inDim, outDim, (int)epilogue);
    }

    public void Gelu(IDeviceBuffer x, long count) => Run("gelu", IKernelRunner.Groups(count, 256), 1, 256, 1, x, (int)count);

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count) => Run("add_inplace", IKernelRunner.Groups(count, 256), 1, 256, 1, x, y, (int)count);

    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y, IDeviceBuffer? probs,
        int rows, int past, int nHead, int headDim)
    {
        if (headDim > 128) throw new BackendException($"{Kind} attention: head_dim {headDim} is larger than the kernel's MAX_HEAD_DIM (128)");
        int E = nHead * headDim, capacity = IBackend.CacheCapacity(kCache, nHead, headDim);
        Run("kv_store", IKernelRunner.Groups((long)rows * E, 256), 1, 256, 1, qkv, kCache, vCache, rows, past, nHead, headDim, capacity);
        // one work-group of 64 (kernels/attention.cl's ATT_THREADS) per (row, head)
        Run("attention", rows * nHead, 1, 64, 1, qkv, kCache, vCache, y, probs ?? y, probs is null ? 0 : 1,
            rows, past, nHead, headDim, capacity);
    }

    /// <summary>Index of the largest of the first <paramref name="n"/> values, computed on the device: one int comes back.</summary>
    public int Argmax(IDeviceBuffer x, int n)
    {
        var outBuf = RentScratch(1);
        Run("argmax", 1, 1, 256, 1, x, n, outBuf);
        Span<float> result = stackalloc float[1];
        Download(outBuf, 0, result);
        ReturnScratch(outBuf);
        return BitConverter.SingleToInt32Bits(result[0]);   // the kernel wrote an int
    }
}
