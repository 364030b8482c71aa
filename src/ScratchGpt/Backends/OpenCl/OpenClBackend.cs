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
/// The model's kernels (kernels/*.cl with prelude_opencl.h) run through OpenCL: this class is the OpenCL host
/// code (context, queue, program, buffers, launches); the operations themselves are <see cref="KernelBackend"/>'s.
/// Weights, activations and the KV cache stay in device buffers; only token ids go up and logits come down.
/// </summary>
public sealed unsafe class OpenClBackend : KernelBackend
{
    private readonly IntPtr _context, _queue, _program, _device;
    private readonly Dictionary<string, IntPtr> _kernels = new();
    private readonly Lock _lock = new();   // one command queue: calls from several threads are serialised
    private long _liveBuffers, _liveBytes;

    public override string Kind => "opencl";
    public override string DeviceName { get; }

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
        foreach (var k in ForwardKernels) Kernel(k);
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

    protected override IDeviceBuffer NewBuffer(long length, int format = WeightFormat.Float32)
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

    protected override int FormatOf(IDeviceBuffer buffer) => ((OpenClBuffer)buffer).Format;

    protected override void WriteBytes(IDeviceBuffer dst, void* src, long bytes)
    {
        lock (_lock) Check(clEnqueueWriteBuffer(_queue, M(dst), 1, 0, (nuint)bytes, src, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueWriteBuffer");
    }

    public override void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        if (dst.Length == 0) return;
        lock (_lock) fixed (float* p = dst)
            Check(clEnqueueReadBuffer(_queue, M(src), 1, (nuint)(offset * 4), (nuint)(dst.Length * 4), p, 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueReadBuffer");
    }

    public override void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count) =>
        Run("copy_floats", IKernelRunner.Groups(count, 64), 1, 64, 1, src, (int)srcOffset, dst, (int)dstOffset, (int)count);

    public override void Zero(IDeviceBuffer buffer, long count)
    {
        float zero = 0;
        if (count > 0)
            lock (_lock) Check(clEnqueueFillBuffer(_queue, M(buffer), &zero, 4, 0, (nuint)(count * 4), 0, IntPtr.Zero, IntPtr.Zero), "clEnqueueFillBuffer");
    }

    /// <summary>clSetKernelArg for each argument (a buffer as its cl_mem), then one clEnqueueNDRangeKernel.</summary>
    public override void Run(string name, long groupsX, long groupsY, int localX, int localY, params object[] args)
    {
        lock (_lock)
        {
            IntPtr k = Kernel(name);
            for (uint i = 0; i < args.Length; i++)
            {
                int st = args[i] switch
                {
                    IDeviceBuffer b => SetMem(k, i, M(b)),
                    int v => clSetKernelArg(k, i, 4, &v),
                    float f => clSetKernelArg(k, i, 4, &f),
                    _ => throw new ArgumentException($"unsupported kernel argument type {args[i].GetType()}"),
                };
                Check(st, $"clSetKernelArg({name}, {i})");
            }
            nuint* global = stackalloc nuint[2] { (nuint)(groupsX * localX), (nuint)(groupsY * localY) };
            nuint* localSize = stackalloc nuint[2] { (nuint)localX, (nuint)localY };
            Check(clEnqueueNDRangeKernel(_queue, k, 2, null, global, localSize, 0, IntPtr.Zero, IntPtr.Zero), $"clEnqueueNDRangeKernel({name})");
        }
    }

    private static int SetMem(IntPtr kernel, uint index, IntPtr mem) => clSetKernelArg(kernel, index, (nuint)sizeof(IntPtr), &mem);

    protected override void DisposeDevice()
    {
        clFinish(_queue);
        foreach (var k in _kernels.Values) clReleaseKernel(k);
        clReleaseProgram(_program);
        clReleaseCommandQueue(_queue);
        clReleaseContext(_context);
    }
}
