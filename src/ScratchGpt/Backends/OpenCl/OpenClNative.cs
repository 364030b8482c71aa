using System.Runtime.InteropServices;

namespace ScratchGpt.Backends.OpenCl;

/// <summary>
/// The slice of the OpenCL 1.2 API the backend uses, bound straight to the ICD loader (libOpenCL.so.1).
/// Every call goes through <see cref="Check"/>, which turns a non-zero status into a BackendException
/// naming the call and the status.
/// </summary>
internal static unsafe class OpenClNative
{
    private const string Lib = "libOpenCL.so.1";

    public const ulong DeviceTypeAll = 0xFFFFFFFF, DeviceTypeGpu = 1 << 2;
    public const uint PlatformName = 0x0902, DeviceName = 0x102B, DeviceType = 0x1000, DeviceGlobalMemSize = 0x101F;
    public const uint ProgramBuildLog = 0x1183;
    public const ulong MemReadWrite = 1 << 0;

    [DllImport(Lib)] public static extern int clGetPlatformIDs(uint numEntries, IntPtr* platforms, uint* numPlatforms);
    [DllImport(Lib)] public static extern int clGetPlatformInfo(IntPtr platform, uint name, nuint size, byte* value, nuint* sizeRet);
    [DllImport(Lib)] public static extern int clGetDeviceIDs(IntPtr platform, ulong type, uint numEntries, IntPtr* devices, uint* numDevices);
    [DllImport(Lib)] public static extern int clGetDeviceInfo(IntPtr device, uint name, nuint size, void* value, nuint* sizeRet);
    [DllImport(Lib)] public static extern IntPtr clCreateContext(IntPtr props, uint numDevices, IntPtr* devices, IntPtr callback, IntPtr userData, int* err);
    [DllImport(Lib)] public static extern IntPtr clCreateCommandQueue(IntPtr context, IntPtr device, ulong props, int* err);
    [DllImport(Lib)] public static extern IntPtr clCreateBuffer(IntPtr context, ulong flags, nuint size, IntPtr hostPtr, int* err);
    [DllImport(Lib)] public static extern int clEnqueueWriteBuffer(IntPtr queue, IntPtr buffer, uint blocking, nuint offset, nuint size, void* ptr, uint nEvents, IntPtr events, IntPtr evt);
    [DllImport(Lib)] public static extern int clEnqueueReadBuffer(IntPtr queue, IntPtr buffer, uint blocking, nuint offset, nuint size, void* ptr, uint nEvents, IntPtr events, IntPtr evt);
    [DllImport(Lib)] public static extern int clEnqueueFillBuffer(IntPtr queue, IntPtr buffer, void* pattern, nuint patternSize, nuint offset, nuint size, uint nEvents, IntPtr events, IntPtr evt);
    [DllImport(Lib)] public static extern IntPtr clCreateProgramWithSource(IntPtr context, uint count, byte** strings, nuint* lengths, int* err);
    [DllImport(Lib)] public static extern int clBuildProgram(IntPtr program, uint numDevices, IntPtr* devices, byte* options, IntPtr callback, IntPtr userData);
    [DllImport(Lib)] public static extern int clGetProgramBuildInfo(IntPtr program, IntPtr device, uint name, nuint size, byte* value, nuint* sizeRet);
    [DllImport(Lib)] public static extern IntPtr clCreateKernel(IntPtr program, byte* name, int* err);
    [DllImport(Lib)] public static extern int clSetKernelArg(IntPtr kernel, uint index, nuint size, void* value);
    [DllImport(Lib)] public static extern int clEnqueueNDRangeKernel(IntPtr queue, IntPtr kernel, uint dims, nuint* offset, nuint* global, nuint* local, uint nEvents, IntPtr events, IntPtr evt);
    [DllImport(Lib)] public static extern int clFinish(IntPtr queue);
    [DllImport(Lib)] public static extern int clReleaseMemObject(IntPtr mem);
    [DllImport(Lib)] public static extern int clReleaseKernel(IntPtr kernel);
    [DllImport(Lib)] public static extern int clReleaseProgram(IntPtr program);
    [DllImport(Lib)] public static extern int clReleaseCommandQueue(IntPtr queue);
    [DllImport(Lib)] public static extern int clReleaseContext(IntPtr context);

    public static void Check(int status, string call)
    {
        if (status != 0) throw new BackendException($"OpenCL {call} failed: {ErrorName(status)} ({status})");
    }

    public static string ErrorName(int status) => status switch
    {
        -1 => "CL_DEVICE_NOT_FOUND", -2 => "CL_DEVICE_NOT_AVAILABLE", -4 => "CL_MEM_OBJECT_ALLOCATION_FAILURE",
        -5 => "CL_OUT_OF_RESOURCES", -6 => "CL_OUT_OF_HOST_MEMORY", -11 => "CL_BUILD_PROGRAM_FAILURE",
        -30 => "CL_INVALID_VALUE", -33 => "CL_INVALID_DEVICE", -34 => "CL_INVALID_CONTEXT", -38 => "CL_INVALID_MEM_OBJECT",
        -46 => "CL_INVALID_KERNEL_NAME", -48 => "CL_INVALID_KERNEL", -49 => "CL_INVALID_ARG_INDEX", -50 => "CL_INVALID_ARG_VALUE",
        -51 => "CL_INVALID_ARG_SIZE", -52 => "CL_INVALID_KERNEL_ARGS", -54 => "CL_INVALID_WORK_GROUP_SIZE",
        -61 => "CL_INVALID_BUFFER_SIZE", -1001 => "CL_PLATFORM_NOT_FOUND_KHR",
        _ => "CL error",
    };

    /// <summary>Every (platform, device) pair, GPUs only if asked.</summary>
    public static List<(IntPtr Platform, IntPtr Device)> Devices(bool gpuOnly)
    {
        var result = new List<(IntPtr, IntPtr)>();
        uint n;
        int st = clGetPlatformIDs(0, null, &n);
        if (st == -1001 || n == 0) return result;
        Check(st, "clGetPlatformIDs");
        var platforms = new IntPtr[n];
        fixed (IntPtr* p = platforms) Check(clGetPlatformIDs(n, p, null), "clGetPlatformIDs");
        foreach (var platform in platforms)
        {
            uint nd;
            if (clGetDeviceIDs(platform, gpuOnly ? DeviceTypeGpu : DeviceTypeAll, 0, null, &nd) != 0 || nd == 0) continue;
            var devs = new IntPtr[nd];
            fixed (IntPtr* d = devs) Check(clGetDeviceIDs(platform, gpuOnly ? DeviceTypeGpu : DeviceTypeAll, nd, d, null), "clGetDeviceIDs");
            foreach (var d in devs) result.Add((platform, d));
        }
        return result;
    }

    public static string DeviceString(IntPtr device, uint param) =>
        QueryString((size, value, sizeRet) => clGetDeviceInfo(device, param, size, value, sizeRet), "clGetDeviceInfo");

    public static string PlatformString(IntPtr platform, uint param) =>
        QueryString((size, value, sizeRet) => clGetPlatformInfo(platform, param, size, value, sizeRet), "clGetPlatformInfo");

    private delegate int InfoQuery(nuint size, byte* value, nuint* sizeRet);

    /// <summary>OpenCL's two-call string query: ask for the size, then fill a buffer of that size.</summary>
    private static string QueryString(InfoQuery query, string call)
    {
        nuint size;
        Check(query(0, null, &size), call);
        var buf = new byte[size];
        fixed (byte* b = buf) Check(query(size, b, null), call);
        return System.Text.Encoding.UTF8.GetString(buf).TrimEnd('\0').Trim();
    }
}
