using System.Reflection;
using System.Runtime.InteropServices;

namespace ScratchGpt.Backends.Cuda;

/// <summary>
/// The CUDA driver API (libcuda.so.1) and NVRTC (libnvrtc.so.*, found by probing the usual names and
/// $CUDA_PATH/lib64) for compiling kernels/*.cl at run time. <see cref="Check"/> turns every non-zero
/// status into a BackendException that names the call.
/// </summary>
internal static unsafe class CudaNative
{
    private const string Cuda = "libcuda.so.1";
    private const string Nvrtc = "nvrtc";

    static CudaNative()
    {
        NativeLibrary.SetDllImportResolver(typeof(CudaNative).Assembly, Resolve);
    }

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Nvrtc) return IntPtr.Zero;
        var candidates = new List<string> { "libnvrtc.so", "libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so.11.2" };
        foreach (var root in new[] { Environment.GetEnvironmentVariable("CUDA_PATH"), "/usr/local/cuda" })
            if (!string.IsNullOrEmpty(root) && Directory.Exists(Path.Combine(root, "lib64")))
                candidates.AddRange(Directory.GetFiles(Path.Combine(root, "lib64"), "libnvrtc.so*"));
        foreach (var c in candidates)
            if (NativeLibrary.TryLoad(c, out var handle)) return handle;
        throw new DllNotFoundException("NVRTC (libnvrtc.so) not found: install the CUDA toolkit's NVRTC or set CUDA_PATH");
    }

    public static void EnsureResolver() { /* touching the type runs the static constructor */ }

    [DllImport(Cuda)] public static extern int cuInit(uint flags);
    [DllImport(Cuda)] public static extern int cuDeviceGetCount(int* count);
    [DllImport(Cuda)] public static extern int cuDeviceGet(int* device, int ordinal);
    [DllImport(Cuda)] public static extern int cuDeviceGetName(byte* name, int len, int device);
    [DllImport(Cuda)] public static extern int cuDeviceGetAttribute(int* value, int attribute, int device);
    [DllImport(Cuda, EntryPoint = "cuCtxCreate_v2")] public static extern int cuCtxCreate(IntPtr* ctx, uint flags, int device);
    [DllImport(Cuda, EntryPoint = "cuCtxDestroy_v2")] public static extern int cuCtxDestroy(IntPtr ctx);
    [DllImport(Cuda)] public static extern int cuCtxSetCurrent(IntPtr ctx);
    [DllImport(Cuda)] public static extern int cuCtxSynchronize();
    [DllImport(Cuda)] public static extern int cuModuleLoadData(IntPtr* module, byte* image);
    [DllImport(Cuda)] public static extern int cuModuleUnload(IntPtr module);
    [DllImport(Cuda)] public static extern int cuModuleGetFunction(IntPtr* function, IntPtr module, byte* name);
    [DllImport(Cuda, EntryPoint = "cuMemAlloc_v2")] public static extern int cuMemAlloc(ulong* ptr, nuint size);
    [DllImport(Cuda, EntryPoint = "cuMemFree_v2")] public static extern int cuMemFree(ulong ptr);
    [DllImport(Cuda, EntryPoint = "cuMemcpyHtoD_v2")] public static extern int cuMemcpyHtoD(ulong dst, void* src, nuint size);
    [DllImport(Cuda, EntryPoint = "cuMemcpyDtoH_v2")] public static extern int cuMemcpyDtoH(void* dst, ulong src, nuint size);
    [DllImport(Cuda, EntryPoint = "cuMemcpyDtoD_v2")] public static extern int cuMemcpyDtoD(ulong dst, ulong src, nuint size);
    [DllImport(Cuda, EntryPoint = "cuMemsetD32_v2")] public static extern int cuMemsetD32(ulong dst, uint value, nuint count);
    [DllImport(Cuda)] public static extern int cuLaunchKernel(IntPtr f, uint gx, uint gy, uint gz, uint bx, uint by, uint bz,
        uint sharedBytes, IntPtr stream, void** args, void** extra);
    [DllImport(Cuda)] public static extern int cuGetErrorName(int error, byte** name);

    [DllImport(Nvrtc)] public static extern int nvrtcCreateProgram(IntPtr* prog, byte* src, byte* name, int numHeaders, byte** headers, byte** includeNames);
    [DllImport(Nvrtc)] public static extern int nvrtcCompileProgram(IntPtr prog, int numOptions, byte** options);
    [DllImport(Nvrtc)] public static extern int nvrtcGetProgramLogSize(IntPtr prog, nuint* size);
    [DllImport(Nvrtc)] public static extern int nvrtcGetProgramLog(IntPtr prog, byte* log);
    [DllImport(Nvrtc)] public static extern int nvrtcGetPTXSize(IntPtr prog, nuint* size);
    [DllImport(Nvrtc)] public static extern int nvrtcGetPTX(IntPtr prog, byte* ptx);
    [DllImport(Nvrtc)] public static extern int nvrtcDestroyProgram(IntPtr* prog);

    public static void Check(int status, string call)
    {
        if (status == 0) return;
        string name = "CUDA error";
        try
        {
            byte* s;
            if (cuGetErrorName(status, &s) == 0 && s != null) name = Marshal.PtrToStringAnsi((IntPtr)s) ?? name;
        }
        catch (DllNotFoundException) { }
        throw new BackendException($"CUDA {call} failed: {name} ({status})");
    }

    public static void CheckNvrtc(int status, string call)
    {
        if (status != 0) throw new BackendException($"NVRTC {call} failed with status {status}");
    }
}
