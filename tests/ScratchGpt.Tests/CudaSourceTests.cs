using System.Diagnostics;
using ScratchGpt.Backends;

namespace ScratchGpt.Tests;

/// <summary>
/// The CUDA path up to the driver call, on machines without a GPU: the exact source the CUDA backend hands
/// to NVRTC (prelude_cuda.h + kernels/*.cl) must compile as C++ — NVRTC's language — here with the host's g++
/// and a stand-in for the few CUDA built-ins the prelude maps to. This catches an OpenCL-only built-in, type or
/// qualifier slipping into the shared kernel dialect, and C/C++ differences, before a GPU ever sees them.
/// (.ci/run installs g++ and fails if this did not run.)
/// </summary>
public class CudaSourceTests
{
    /// <summary>What nvcc/NVRTC would provide: thread indices, the barrier, the bit cast, the math functions.</summary>
    private const string CudaStandIn = """
        #include <math.h>
        #undef INFINITY
        struct dim3 { unsigned x, y, z; };
        extern dim3 blockIdx, blockDim, threadIdx;
        void __syncthreads();
        float __int_as_float(int);
        float __uint_as_float(unsigned int);
        #define __global__
        #define __shared__ static

        """;

    private static (int Code, string Output) CompileAsCudaCpp(string source)
    {
        string path = Path.Combine(Path.GetTempPath(), $"sgpt-cuda-{Guid.NewGuid():N}.cu");
        File.WriteAllText(path, CudaStandIn + source);
        try
        {
            var psi = new ProcessStartInfo("g++", ["-fsyntax-only", "-std=c++17", "-Wall", "-Werror", "-x", "c++", path])
            { RedirectStandardError = true, RedirectStandardOutput = true };
            Process p;
            try { p = Process.Start(psi)!; }
            catch (System.ComponentModel.Win32Exception) { throw new InvalidOperationException("g++ not found: apt-get install g++ (.ci/run does)"); }
            string output = p.StandardError.ReadToEnd() + p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void The_cuda_backends_kernel_source_compiles_as_cpp()
    {
        string source = KernelSource.Load("prelude_cuda.h");
        var (code, output) = CompileAsCudaCpp(source);
        Assert.True(code == 0, output);
        // Every kernel the backends and the device trainer launch is in it, with C linkage for cuModuleGetFunction.
        foreach (string kernel in new[] { "embedding", "layernorm", "matvec", "matmul_tiled", "attention", "argmax", "gemm", "cross_entropy",
                     "layernorm_backward", "attention_backward_query", "attention_backward_key_value", "embedding_backward", "adamw", "sum_squares" })
            Assert.Matches($@"KERNEL void {kernel}\(", source);
        Assert.StartsWith("// Prelude for CUDA", source);
        Assert.Contains("#define KERNEL extern \"C\" __global__", source);
    }

    [Theory]
    [InlineData("get_global_id(0)")]          // an OpenCL built-in
    [InlineData("__local float tmp[4]")]      // an OpenCL qualifier
    [InlineData("float4 v")]                  // an OpenCL vector type
    [InlineData("int new = 1")]               // fine in C, a keyword in C++
    public void A_kernel_that_is_not_cuda_cpp_is_caught(string line)
    {
        string source = KernelSource.Load("prelude_cuda.h") + $"\nKERNEL void broken(GLOBAL float* x) {{ {line}; x[0] = 0.0f; }}\n";
        var (code, output) = CompileAsCudaCpp(source);
        Assert.NotEqual(0, code);
        Assert.Contains("broken", output);
    }
}
