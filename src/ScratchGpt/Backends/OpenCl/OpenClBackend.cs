using System.Text;
using static ScratchGpt.Backends.OpenCl.OpenClNative;

namespace ScratchGpt.Backends.OpenCl;

/// <summary>Device memory of the OpenCL backend.</summary>
public sealed class OpenClBuffer(IntPtr mem, long length, Action<OpenClBuffer> release) : IDeviceBuffer
{
    public IntPtr Mem { get; private set; } = mem;
    public long Length { get; } = length;

    /// <summary>How the elements are stored (<see cref="WeightFormat"/>): float32 unless a 16-bit weight.</summary>
    public int Format { get; init; } = WeightFormat.Float32;

    public void Dispose()
    {
        if (Mem == IntPtr.Zero) return;
        release(this);
        Mem = IntPtr.Zero;
    }
}

/// <summary>
/// The model's kernels (kernels/*.cl with prelude_opencl.h) run through OpenCL. Weights, activations
/// and the KV cache stay in device buffers; only token ids go up and logits come down.
/// Float16/bfloat16 weights stay 16-bit on the device and are widened inside the kernels (kernels/weights.cl).
/// </summary>
public sealed unsafe class OpenClBackend : IKernelRunner
{
    private readonly IntPtr _context, _queue, _program, _device;
    private readonly Dictionary<string, IntPtr> _kernels = new();
    private readonly Lock _lock = new();   // one command queue: calls from several threads are serialised
    private long _liveBuffers, _liveBytes;

    public string Kind => "opencl";
    public string DeviceName { get; }

    /// <summary>Device buffers currently allocated (for leak checks).</summary>
    public long LiveBuffers => Interlocked.Read(ref _liveBuffers);

    /// <summary>Bytes of device memory in those buffers.</summary>
    public long LiveBytes => Interlocked.Read(ref _liveBytes);

    private OpenClBackend(IntPtr device, string name)
    {
        _device = device;
        DeviceName = name;
        int err;
        IntPtr dev = device;
        _context = clCreateContext(IntPtr.Zero, 1, &dev, IntPtr.Zero, IntPtr.Zero, &err);
        Check(err, "clCreateContext");
        _queue = clCreateCommandQueue(_context, device, 0, &err);
        Check(err, "clCreateCommandQueue");
        _program = Build(KernelSource.Load("prelude_opencl.h"));
        foreach (var k in new[] { "embedding", "gelu", "add_inplace", "copy_floats", "layernorm", "matmul_tiled", "matvec", "kv_store", "attention", "argmax" })
            Kernel(k);
    }

    /// <summary>The kernel object for <paramref name="name"/>, created on first use (call under _lock or from the constructor).</summary>
    private IntPtr Kernel(string name)
    {
        if (_kernels.TryGetValue(name, out var k)) return k;
        int err;
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* b = bytes) k = clCreateKernel(_program, b, &err);
        Check(err, $"clCreateKernel({name})");
        return _kernels[name] = k;
    }

    /// <summary>Opens device <paramref name="index"/> (of all OpenCL devices, or of the GPUs only).</summary>
    public static OpenClBackend Create(int index, bool gpuOnly)
    {
        List<(IntPtr Platform, IntPtr Device)> devices;
        try { devices = Devices(gpuOnly); }
        catch (DllNotFoundException) { throw new BackendException("OpenCL: libOpenCL.so.1 not found (install ocl-icd-libopencl1 and a driver, e.g. pocl-opencl-icd)"); }
        if (devices.Count == 0) throw new BackendException(gpuOnly ? "OpenCL: no GPU device found" : "OpenCL: no device found (is an ICD such as pocl-opencl-icd installed?)");
        if (index >= devices.Count) throw new BackendException($"--device opencl:{index}: only {devices.Count} OpenCL device(s) (0..{devices.Count - 1})");
        var (_, d) = devices[index];
        return new OpenClBackend(d, DeviceString(d, OpenClNative.DeviceName));
    }

    private IntPtr Build(string source)
    {
        int err;
        var src = Encoding.UTF8.GetBytes(source);
        IntPtr program;
        fixed (byte* s = src)
        {
            byte* p = s;
            nuint len = (nuint)src.Length;
            program = clCreateProgramWithSource(_context, 1, &p, &len, &err);
        }
        Check(err, "clCreateProgramWithSource");
        IntPtr dev = _device;
        var opts = Encoding.ASCII.GetBytes("-cl-std=CL1.2\0");
        int st;
        fixed (byte* o = opts) st = clBuildProgram(program, 1, &dev, o, IntPtr.Zero, IntPtr.Zero);
        if (st != 0)
        {
            nuint size;
            clGetProgramBuildInfo(program, _device, ProgramBuildLog, 0, null, &size);
            var log = new byte[size];
            fixed (byte* l = log) clGetProgramBuildInfo(program, _device, ProgramBuildLog, size, l, null);
            string text = Encoding.UTF8.GetString(log).Trim('\0', ' ', '\n');
            throw new BackendException($"OpenCL clBuildProgram failed ({ErrorName(st)}): {text.ReplaceLineEndings(" | ")}");
        }
        return program;
    }

    // ---- memory ------------------------------------------------------------------------------------

    private OpenClBuffer NewBuffer(long length, int format = WeightFormat.Float32)
    {
        int err;
        long bytes = length * (format == WeightFormat.Float32 ? 4 : 2);
        IntPtr mem = clCreateBuffer(_context, MemReadWrite, (nuint)Math.Max(1, bytes), IntPtr.Zero, &err);
        if (err != 0) throw new BackendException($"OpenCL clCreateBuffer of {bytes:N0} bytes failed: {ErrorName(err)} ({err}) — device out of memory?");
        Interlocked.Increment(ref _liveBuffers);
        Interlocked.Add(ref _liveBytes, bytes);
        return new OpenClBuffer(mem, length, b =>
        {
            clReleaseMemObject(b.Mem);
            Interlocked.Decrement(ref _liveBuffers);
            Interlocked.Add(ref _liveBytes, -bytes);
        }) { Format = format };
    }

    private static IntPtr M(IDeviceBuffer b) => ((OpenClBuffer)b).Mem;
    private static int Fmt(IDeviceBuffer b) => ((OpenClBuffer)b).Format;

    public IDeviceBuffer Upload(ReadOnlySpan<float> data)
    {
        var b = NewBuffer(data.Length);
        Write(b, data);
        return b;
    }

    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision)
    {
        if (precision == WeightPrecision.Float32) return Upload(data);
        var bits = WeightFormat.SixteenBit(data, precision);
        var b = NewBuffer(bits.Length, WeightFormat.Code(precision));
        if (bits.Length > 0)
            lock (_lock) fixed (ushort* p = bits) Check(clEnqueueWriteBuffer(_queue, b.Mem, 1, 0, (nuint)(bits.Length * 2), p, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueWriteBuffer");
        return b;
    }

    public IDeviceBuffer Allocate(long length)
    {
        var b = NewBuffer(length);
        Zero(b, length);
        return b;
    }

    public void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        if (dst.Length == 0) return;
        lock (_lock) fixed (float* p = dst)
            Check(clEnqueueReadBuffer(_queue, M(src), 1, (nuint)(offset * 4), (nuint)(dst.Length * 4), p, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueReadBuffer");
    }

    public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count) =>
        Launch("copy_floats", count, 64, M(src), (int)srcOffset, M(dst), (int)dstOffset, (int)count);

    // ---- kernels -------------------------------------------------------------------------------------

    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe, IDeviceBuffer x, int dim)
    {
        using var idBuf = NewBuffer(ids.Length);
        Write(idBuf, System.Runtime.InteropServices.MemoryMarshal.Cast<int, float>(ids));
        Launch("embedding", (long)ids.Length * dim, 64, idBuf.Mem, startPosition, ids.Length, M(wte), Fmt(wte), M(wpe), M(x), ids.Length, dim);
    }

    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim, float eps) =>
        Launch("layernorm", (long)rows * 128, 128, M(x), M(gamma), M(beta), M(y), M(y), M(y), 0, dim, eps);

    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim, int outDim,
        MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        IntPtr b = bias is null ? M(w) : M(bias);   // any valid buffer when there is no bias
        if (rows == 1) Launch("matvec", (long)outDim * 64, 64, M(x), M(w), Fmt(w), b, bias is null ? 0 : 1, M(y), inDim, outDim, (int)epilogue);
        else Launch2D("matmul_tiled", RoundUp(outDim, 16), RoundUp(rows, 16), 16, 16, M(x), M(w), Fmt(w), b, bias is null ? 0 : 1, M(y), rows, inDim, outDim, (int)epilogue);
    }

    public void Gelu(IDeviceBuffer x, long count) => Launch("gelu", count, 64, M(x), (int)count);

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count) => Launch("add_inplace", count, 64, M(x), M(y), (int)count);

    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y, IDeviceBuffer? probs,
        int rows, int past, int nHead, int headDim)
    {
        if (headDim > 128) throw new BackendException($"OpenCL attention: head_dim {headDim} is larger than the kernel's MAX_HEAD_DIM (128)");
        int E = nHead * headDim;
        Launch("kv_store", (long)rows * E, 64, M(qkv), M(kCache), M(vCache), rows, past, E);
        Launch("attention", (long)rows * nHead, 32, M(qkv), M(kCache), M(vCache), M(y), probs is null ? M(y) : M(probs), probs is null ? 0 : 1,
            rows, past, nHead, headDim);
    }

    /// <summary>Index of the largest of the first <paramref name="n"/> values, computed on the device.</summary>
    public int Argmax(IDeviceBuffer x, int n)
    {
        using var outBuf = NewBuffer(1);
        Launch("argmax", 256, 256, M(x), n, outBuf.Mem);
        int result;
        lock (_lock) Check(clEnqueueReadBuffer(_queue, outBuf.Mem, 1, 0, 4, &result, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueReadBuffer");
        return result;
    }

    // ---- IKernelRunner ----------------------------------------------------------------------------------

    public void Run(string name, long groupsX, long groupsY, int localX, int localY, params object[] args) =>
        Launch2D(name, groupsX * localX, groupsY * localY, localX, localY,
            args.Select(a => a is IDeviceBuffer b ? M(b) : a).ToArray());

    public void Zero(IDeviceBuffer buffer, long count)
    {
        float zero = 0;
        if (count > 0)
            lock (_lock) Check(clEnqueueFillBuffer(_queue, M(buffer), &zero, 4, 0, (nuint)(count * 4), 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueFillBuffer");
    }

    public void Write(IDeviceBuffer dst, ReadOnlySpan<float> src)
    {
        if (src.Length > dst.Length) throw new ArgumentException($"writing {src.Length} floats into a buffer of {dst.Length}");
        if (src.Length > 0)
            lock (_lock) fixed (float* p = src) Check(clEnqueueWriteBuffer(_queue, M(dst), 1, 0, (nuint)(src.Length * 4), p, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueWriteBuffer");
    }

    private static long RoundUp(long n, long m) => (n + m - 1) / m * m;

    private void Launch(string name, long items, int local, params object[] args) => Launch2D(name, RoundUp(Math.Max(items, 1), local), 1, local, 1, args);

    private void Launch2D(string name, long globalX, long globalY, int localX, int localY, params object[] args)
    {
        lock (_lock)
        {
            IntPtr k = Kernel(name);
            for (uint i = 0; i < args.Length; i++)
            {
                int st = args[i] switch
                {
                    IntPtr mem => clSetKernelArg(k, i, (nuint)sizeof(IntPtr), &mem),
                    int v => clSetKernelArg(k, i, 4, &v),
                    float f => clSetKernelArg(k, i, 4, &f),
                    _ => throw new ArgumentException($"unsupported kernel argument type {args[i].GetType()}"),
                };
                Check(st, $"clSetKernelArg({name}, {i})");
            }
            nuint* global = stackalloc nuint[2] { (nuint)globalX, (nuint)globalY };
            nuint* localSize = stackalloc nuint[2] { (nuint)localX, (nuint)localY };
            Check(clEnqueueNDRangeKernel(_queue, k, 2, null, global, localSize, 0, IntPtr.Zero, IntPtr.Zero), $"clEnqueueNDRangeKernel({name})");
        }
    }

    public void Dispose()
    {
        clFinish(_queue);
        foreach (var k in _kernels.Values) clReleaseKernel(k);
        clReleaseProgram(_program);
        clReleaseCommandQueue(_queue);
        clReleaseContext(_context);
    }
}
