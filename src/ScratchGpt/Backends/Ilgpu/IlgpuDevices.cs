using System.Reflection;
using System.Runtime.InteropServices;
using System.Runtime.Loader;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;

namespace ScratchGpt.Backends.Ilgpu;

/// <summary>
/// The one ILGPU context of the process and the devices it sees: CUDA GPUs, OpenCL devices ILGPU can use (it needs
/// the generic address space), and ILGPU's CPU accelerator, which runs every kernel on CPU threads (slowly, but a
/// breakpoint in a kernel stops there).
/// </summary>
public static class IlgpuDevices
{
    /// <summary>The CPU accelerator's shape: warps of 32 and groups of up to 256 threads, as on a GPU (ILGPU's default
    /// CPU device has warps of 4 and groups of 16, too small for the kernels' 256-thread groups).</summary>
    private static CPUDevice CpuDevice =>
        new(numThreadsPerWarp: 32, numWarpsPerMultiprocessor: 8, numMultiprocessors: 1);

    private static readonly Lazy<Context> Shared = new(() =>
    {
        MapNativeLibraries();
        // MathMode.Default: the Fast modes make ILGPU emit tanh.approx.ftz.f32, which ptxas rejects.
        return Context.Create(b => b.Cuda().OpenCL().CPU(CpuDevice).Math(MathMode.Default).EnableAlgorithms());
    });

    public static Context Context => Shared.Value;

    /// <summary>A context for compiling kernels to PTX or OpenCL C without a device (`kernels compile`).</summary>
    public static Context CreateCompileContext() => Context.Create(b => b.Math(MathMode.Default).EnableAlgorithms());

    /// <summary>The devices of one kind ("cuda", "opencl", "ilgpu-cpu").</summary>
    public static IReadOnlyList<Device> Of(string kind)
    {
        var list = new List<Device>();
        switch (kind)
        {
            case "cuda": foreach (var d in Context.GetCudaDevices()) list.Add(d); break;
            case "opencl": foreach (var d in Context.GetCLDevices()) list.Add(d); break;
            case "ilgpu-cpu": foreach (var d in Context.GetCPUDevices()) list.Add(d); break;
            default: throw new ArgumentException($"--device: '{kind}' is not an ILGPU device kind");
        }
        return list;
    }

    /// <summary>A backend on device <paramref name="index"/> of <paramref name="kind"/>, or a one-line reason why
    /// not.</summary>
    public static IlgpuBackend Open(string kind, int index)
    {
        var devices = Of(kind);
        if (devices.Count == 0) throw new BackendException($"--device {kind}: no device found ({WhyNone(kind)})");
        if (index >= devices.Count)
            throw new BackendException($"--device {kind}:{index}: only {devices.Count} device(s) found");
        Accelerator accelerator;
        try { accelerator = devices[index].CreateAccelerator(Context); }
        catch (Exception e)
        {
            throw new BackendException($"--device {kind}:{index}: {e.Message.ReplaceLineEndings(" ")}", e);
        }
        return new IlgpuBackend(accelerator, kind);
    }

    /// <summary>Why ILGPU found no device of a kind.</summary>
    public static string WhyNone(string kind) => kind switch
    {
        "cuda" => NativeLibrary.TryLoad("libcuda.so.1", out _)
            ? "the CUDA driver is installed but reports no usable GPU" : "no CUDA driver: libcuda.so.1 not found",
        "opencl" => NativeLibrary.TryLoad("libOpenCL.so.1", out _)
            ? "no OpenCL device with what ILGPU needs (OpenCL 2.0's generic address space; PoCL on a CPU lacks it)"
            : "no OpenCL driver: libOpenCL.so.1 not found",
        _ => "none",
    };

    private static int _mapped;

    /// <summary>
    /// ILGPU loads its drivers by the names "cuda" and "OpenCL" (libcuda.so, libOpenCL.so); many machines have only
    /// the versioned libcuda.so.1 / libOpenCL.so.1 that the driver packages install. Resolve those for it.
    /// </summary>
    private static void MapNativeLibraries()
    {
        if (Interlocked.Exchange(ref _mapped, 1) == 1) return;
        AssemblyLoadContext.Default.ResolvingUnmanagedDll += (Assembly _, string name) =>
        {
            string? versioned = name switch
            {
                "cuda" or "libcuda" or "libcuda.so" => "libcuda.so.1",
                "OpenCL" or "libOpenCL" or "libOpenCL.so" => "libOpenCL.so.1",
                _ => null,
            };
            return versioned is not null && NativeLibrary.TryLoad(versioned, out var handle) ? handle : IntPtr.Zero;
        };
    }
}
