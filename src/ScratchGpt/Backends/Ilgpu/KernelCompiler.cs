using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.OpenCL;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using ILGPU.Runtime.OpenCL;
using ScratchGpt.Kernels;

namespace ScratchGpt.Backends.Ilgpu;

/// <summary>
/// The code ILGPU generates for every kernel, without a device: PTX for a CUDA architecture, or OpenCL C. A reader
/// sees what a kernel becomes; CI assembles the PTX with ptxas and checks the OpenCL C with clang.
/// </summary>
public static class KernelCompiler
{
    /// <summary>One (name, source) per kernel and weight-type specialisation. <paramref name="arch"/>: e.g.
    /// "sm_90".</summary>
    public static IEnumerable<(string Name, string Source)> Compile(string target, string arch = "sm_90")
    {
        using var context = IlgpuDevices.CreateCompileContext();
        Backend backend = target switch
        {
            // ISA 7.8 is what CUDA 11.8's ptxas (Debian's) accepts; ILGPU writes .target as min(sm_80, arch).
            "ptx" => new PTXBackend(context, ParseArchitecture(arch), CudaInstructionSet.ISA_78, null!),
            "opencl" => new CLBackend(context,
                new CLCapabilityContext(float16: true, float64: false, genericAddressSpace: true, int64_Atomics: false,
                subGroups: false), CLDeviceVendor.Other, CLCVersion.CL20),
            _ => throw new ArgumentException($"--target must be ptx or opencl, got '{target}'"),
        };
        using (backend)
            foreach (var (name, method) in DeviceKernels.EntryPoints())
            {
                CompiledKernel compiled;
                try
                {
                    compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(method),
                        new KernelSpecialization());
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    throw new BackendException($"{target}: kernel {name}: " +
                        $"{(e.InnerException ?? e).Message.ReplaceLineEndings(" ")}", e);
                }
                yield return (name, compiled switch
                {
                    PTXCompiledKernel ptx => ptx.PTXAssembly,
                    CLCompiledKernel cl => cl.Source,
                    _ => throw new InvalidOperationException($"unexpected compiled kernel {compiled.GetType().Name}"),
                });
            }
    }

    private static CudaArchitecture ParseArchitecture(string arch)
    {
        var digits = arch.StartsWith("sm_", StringComparison.OrdinalIgnoreCase) ? arch[3..] : "";
        if (digits.Length < 2 || !digits.All(char.IsAsciiDigit))
            throw new ArgumentException($"--arch must look like sm_90, got '{arch}'");
        return new CudaArchitecture(int.Parse(digits[..^1]), digits[^1] - '0');
    }
}
