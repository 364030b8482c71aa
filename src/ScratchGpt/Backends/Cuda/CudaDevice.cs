using System.Runtime.InteropServices;
using System.Text;
using static ScratchGpt.Backends.Cuda.CudaNative;

namespace ScratchGpt.Backends.Cuda;

/// <summary>Device memory of the CUDA backend.</summary>
public sealed class CudaBuffer(ulong ptr, long length, Action<CudaBuffer> release) : IDeviceBuffer
{
    public ulong Ptr { get; private set; } = ptr;
    public long Length { get; } = length;

    /// <summary>How the elements are stored (<see cref="WeightFormat"/>): float32 unless a 16-bit weight.</summary>
    public int Format { get; init; } = WeightFormat.Float32;

    public void Dispose()
    {
        if (Ptr == 0) return;
        release(this);
        Ptr = 0;
    }
}

/// <summary>
/// The model's kernels (kernels/*.cl with prelude_cuda.h, compiled by NVRTC for this GPU) run through
/// the CUDA driver API: this class is the CUDA host code (context, module, buffers, launches); the operations
/// themselves are <see cref="KernelBackend"/>'s, the same launches as on OpenCL (blocks = work-groups).
/// </summary>
public sealed unsafe class CudaDevice : KernelBackend
{
    private readonly IntPtr _context, _module;
    private readonly Dictionary<string, IntPtr> _functions = new();
    private readonly Lock _lock = new();
    private long _liveBuffers;

    public override string Kind => "cuda";
    public override string DeviceName { get; }
    public long LiveBuffers => Interlocked.Read(ref _liveBuffers);

    private static void Init()
    {
        EnsureResolver();
        try { Check(cuInit(0), "cuInit"); }
        catch (DllNotFoundException) { throw new BackendException("CUDA: libcuda.so.1 not found (no NVIDIA driver on this machine)"); }
    }

    public static IEnumerable<(string Id, string Name)> List()
    {
        Init();
        int n;
        Check(cuDeviceGetCount(&n), "cuDeviceGetCount");
        var result = new List<(string, string)>();
        for (int i = 0; i < n; i++) result.Add(($"cuda:{i}", Name(i)));
        return result;
    }

    private static string Name(int ordinal)
    {
        int dev;
        Check(cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        var buf = new byte[256];
        fixed (byte* b = buf) Check(cuDeviceGetName(b, buf.Length, dev), "cuDeviceGetName");
        return Encoding.ASCII.GetString(buf).TrimEnd('\0');
    }

    public static CudaDevice Open(int ordinal)
    {
        Init();
        int n;
        Check(cuDeviceGetCount(&n), "cuDeviceGetCount");
        if (n == 0) throw new BackendException("CUDA: no GPU found");
        if (ordinal >= n) throw new BackendException($"--device cuda:{ordinal}: only {n} CUDA device(s) (0..{n - 1})");
        return new CudaDevice(ordinal);
    }

    private CudaDevice(int ordinal)
    {
        int dev, major, minor;
        Check(cuDeviceGet(&dev, ordinal), "cuDeviceGet");
        DeviceName = Name(ordinal);
        Check(cuDeviceGetAttribute(&major, 75, dev), "cuDeviceGetAttribute(major)");
        Check(cuDeviceGetAttribute(&minor, 76, dev), "cuDeviceGetAttribute(minor)");
        IntPtr ctx;
        Check(cuCtxCreate(&ctx, 0, dev), "cuCtxCreate");
        _context = ctx;
        byte[] ptx;
        try { ptx = Compile(KernelSource.Load("prelude_cuda.h"), $"--gpu-architecture=compute_{major}{minor}"); }
        catch (DllNotFoundException e) { throw new BackendException($"CUDA: {e.Message}"); }
        IntPtr module;
        fixed (byte* p = ptx) Check(cuModuleLoadData(&module, p), "cuModuleLoadData");
        _module = module;
        foreach (var k in ForwardKernels) Function(k);
    }

    /// <summary>The kernel <paramref name="name"/> of the compiled module, looked up on first use (call under _lock or from the constructor).</summary>
    private IntPtr Function(string name)
    {
        if (_functions.TryGetValue(name, out var f)) return f;
        var bytes = Encoding.ASCII.GetBytes(name + "\0");
        fixed (byte* nm = bytes) Check(cuModuleGetFunction(&f, _module, nm), $"cuModuleGetFunction({name})");
        return _functions[name] = f;
    }

    private static byte[] Compile(string source, string arch)
    {
        IntPtr prog;
        var src = Encoding.UTF8.GetBytes(source + "\0");
        var name = Encoding.ASCII.GetBytes("scratchgpt.cu\0");
        fixed (byte* s = src) fixed (byte* n = name) CheckNvrtc(nvrtcCreateProgram(&prog, s, n, 0, null, null), "nvrtcCreateProgram");
        try
        {
            var opts = new[] { arch, "--use_fast_math=false", "-default-device" }.Select(o => Marshal.StringToHGlobalAnsi(o)).ToArray();
            int st;
            try { fixed (IntPtr* o = opts) st = nvrtcCompileProgram(prog, opts.Length, (byte**)o); }
            finally { foreach (var o in opts) Marshal.FreeHGlobal(o); }
            if (st != 0)
            {
                nuint size;
                nvrtcGetProgramLogSize(prog, &size);
                var log = new byte[size];
                fixed (byte* l = log) nvrtcGetProgramLog(prog, l);
                throw new BackendException($"NVRTC compile failed: {Encoding.UTF8.GetString(log).Trim('\0', '\n').ReplaceLineEndings(" | ")}");
            }
            nuint ptxSize;
            CheckNvrtc(nvrtcGetPTXSize(prog, &ptxSize), "nvrtcGetPTXSize");
            var ptx = new byte[ptxSize];
            fixed (byte* p = ptx) CheckNvrtc(nvrtcGetPTX(prog, p), "nvrtcGetPTX");
            return ptx;
        }
        finally { nvrtcDestroyProgram(&prog); }
    }

    // ---- memory ------------------------------------------------------------------------------------

    protected override IDeviceBuffer NewBuffer(long length, int format = WeightFormat.Float32)
    {
        ulong ptr;
        long bytes = length * (format == WeightFormat.Float32 ? 4 : 2);
        lock (_lock)
        {
            Check(cuCtxSetCurrent(_context), "cuCtxSetCurrent");
            int st = cuMemAlloc(&ptr, (nuint)Math.Max(4, bytes));
            if (st != 0) Check(st, $"cuMemAlloc({bytes:N0} bytes) — device out of memory?");
        }
        Interlocked.Increment(ref _liveBuffers);
        return new CudaBuffer(ptr, length, b => { lock (_lock) { cuCtxSetCurrent(_context); cuMemFree(b.Ptr); } Interlocked.Decrement(ref _liveBuffers); }) { Format = format };
    }

    private static ulong P(IDeviceBuffer b) => ((CudaBuffer)b).Ptr;

    protected override int FormatOf(IDeviceBuffer buffer) => ((CudaBuffer)buffer).Format;

    protected override void WriteBytes(IDeviceBuffer dst, void* src, long bytes)
    {
        lock (_lock) { cuCtxSetCurrent(_context); Check(cuMemcpyHtoD(P(dst), src, (nuint)bytes), "cuMemcpyHtoD"); }
    }

    public override void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        if (dst.Length == 0) return;
        lock (_lock) fixed (float* p = dst)
        {
            cuCtxSetCurrent(_context);
            Check(cuMemcpyDtoH(p, P(src) + (ulong)(offset * 4), (nuint)(dst.Length * 4)), "cuMemcpyDtoH");
        }
    }

    public override void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count)
    {
        if (count == 0) return;
        lock (_lock) { cuCtxSetCurrent(_context); Check(cuMemcpyDtoD(P(dst) + (ulong)(dstOffset * 4), P(src) + (ulong)(srcOffset * 4), (nuint)(count * 4)), "cuMemcpyDtoD"); }
    }

    public override void Zero(IDeviceBuffer buffer, long count)
    {
        if (count > 0) lock (_lock) { cuCtxSetCurrent(_context); Check(cuMemsetD32(P(buffer), 0, (nuint)count), "cuMemsetD32"); }
    }

    /// <summary>cuLaunchKernel with an array of pointers to the argument values (a buffer as its device pointer).</summary>
    public override void Run(string name, long groupsX, long groupsY, int localX, int localY, params object[] args)
    {
        var values = stackalloc ulong[args.Length];
        var pointers = stackalloc void*[args.Length];
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case IDeviceBuffer b: values[i] = P(b); break;
                case int v: *(int*)&values[i] = v; break;
                case float f: *(float*)&values[i] = f; break;
                default: throw new ArgumentException($"unsupported kernel argument type {args[i].GetType()}");
            }
            pointers[i] = &values[i];
        }
        lock (_lock)
        {
            cuCtxSetCurrent(_context);
            Check(cuLaunchKernel(Function(name), (uint)groupsX, (uint)groupsY, 1, (uint)localX, (uint)localY, 1, 0, IntPtr.Zero, pointers, null),
                $"cuLaunchKernel({name})");
        }
    }

    protected override void DisposeDevice()
    {
        lock (_lock)
        {
            cuCtxSetCurrent(_context);
            cuCtxSynchronize();
            cuModuleUnload(_module);
            cuCtxDestroy(_context);
        }
    }
}
