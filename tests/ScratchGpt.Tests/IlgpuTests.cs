using ScratchGpt.Model;
using ScratchGpt.Backends;
using ScratchGpt.Backends.Cpu;
using ScratchGpt.Backends.Ilgpu;

namespace ScratchGpt.Tests;

/// <summary>
/// The op table (<see cref="KernelCheck"/>) and the whole model on every backend against the plain reference:
/// the SIMD CPU backend and ILGPU's CPU accelerator always, CUDA and OpenCL where a device is found. ILGPU's CPU
/// accelerator runs a thread per GPU thread, so it gets the small shapes. Nothing here is skipped.
/// </summary>
public class IlgpuTests
{
    internal static readonly Lazy<IlgpuBackend> Backend = new(() => IlgpuDevices.Open("ilgpu-cpu", 0));

    /// <summary>Every device kind this machine has, by --device name (ilgpu-cpu always).</summary>
    public static TheoryData<string> Devices()
    {
        var data = new TheoryData<string> { "ilgpu-cpu" };
        foreach (var kind in new[] { "cuda", "opencl" })
            if (IlgpuDevices.Of(kind).Count > 0) data.Add(kind);
        return data;
    }

    [Fact]
    public void The_simd_cpu_backend_matches_the_reference_on_every_op()
    {
        var results = KernelCheck.Run(new CpuBackend(), seed: 3).ToList();
        Assert.True(results.Count >= 63, $"only {results.Count} checks ran");
        foreach (var r in results)
            Assert.True(r.RelativeError < KernelCheck.Tolerance,
                $"{r.Kernel} {r.Shape}: relative error {r.RelativeError:E2}");
    }

    /// <summary>The SIMD CPU backend with a planted bug: gelu writes one element past the count it was given.</summary>
    private sealed class OverrunningGelu(IBackend inner) : IBackend
    {
        public string Kind => inner.Kind;
        public string DeviceName => inner.DeviceName;
        public IDeviceBuffer Upload(ReadOnlySpan<float> data) => inner.Upload(data);
        public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision) =>
            inner.UploadWeight(data, precision);
        public double BytesPerWeight(WeightPrecision precision) => inner.BytesPerWeight(precision);
        public IDeviceBuffer Allocate(long length) => inner.Allocate(length);
        public IDeviceBuffer AllocateCache(long length, KvCachePrecision precision) =>
            inner.AllocateCache(length, precision);
        public bool HoldsCache(KvCachePrecision precision) => inner.HoldsCache(precision);
        public int BytesPerCacheValue(KvCachePrecision precision) => inner.BytesPerCacheValue(precision);
        public void Download(IDeviceBuffer src, long offset, Span<float> dst) => inner.Download(src, offset, dst);
        public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count) =>
            inner.Copy(src, srcOffset, dst, dstOffset, count);
        public void Embedding(ReadOnlySpan<int> ids, int start, IDeviceBuffer wte, IDeviceBuffer wpe, IDeviceBuffer x,
            int dim) => inner.Embedding(ids, start, wte, wpe, x, dim);
        public void LayerNorm(IDeviceBuffer x, IDeviceBuffer g, IDeviceBuffer b, IDeviceBuffer y, int rows, int dim,
            float eps) => inner.LayerNorm(x, g, b, y, rows, dim, eps);
        public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim,
            int outDim,
            MatMulEpilogue epilogue = MatMulEpilogue.Store) =>
            inner.MatMul(x, w, bias, y, rows, inDim, outDim, epilogue);
        public void Gelu(IDeviceBuffer x, long count) => inner.Gelu(x, count + 1);
        public void Add(IDeviceBuffer x, IDeviceBuffer y, long count) => inner.Add(x, y, count);
        public int Argmax(IDeviceBuffer x, int n) => inner.Argmax(x, n);
        public void Attention(IDeviceBuffer qkv, IDeviceBuffer k, IDeviceBuffer v, IDeviceBuffer y,
            IDeviceBuffer? probs, int rows, int past,
            int nHead, int headDim) => inner.Attention(qkv, k, v, y, probs, rows, past, nHead, headDim);
        public void Dispose() => inner.Dispose();
    }

    [Fact]
    public void Perf_mode_times_every_case_and_keeps_its_check()
    {
        var results = KernelCheck.Run(new CpuBackend(), seed: 6, large: false, perf: true).ToList();
        Assert.All(results, r => Assert.True(r.RelativeError < KernelCheck.Tolerance, $"{r.Kernel} {r.Shape}"));
        Assert.All(results,
            r => Assert.True(r.Microseconds > 0 && r.GigabytesPerSecond > 0, $"{r.Kernel} {r.Shape}: no timing"));
        Assert.All(KernelCheck.Run(new CpuBackend(), seed: 6, large: false), r => Assert.Null(r.Microseconds));
    }

    [Fact]
    public void A_write_past_an_output_buffer_fails_its_case()
    {
        var results = KernelCheck.Run(new OverrunningGelu(new CpuBackend()), large: false).ToList();
        Assert.All(results.Where(r => r.Kernel == "gelu"),
            r => Assert.True(double.IsPositiveInfinity(r.RelativeError), $"gelu {r.Shape}"));
        Assert.All(results.Where(r => r.Kernel != "gelu"),
            r => Assert.True(r.RelativeError < KernelCheck.Tolerance, $"{r.Kernel} {r.Shape}"));
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void Every_kernel_matches_the_reference(string device)
    {
        using var be = device == "ilgpu-cpu" ? null : (IlgpuBackend)BackendFactory.Create(device);
        var gpu = be ?? Backend.Value;
        var results = KernelCheck.Run(gpu, seed: 1, large: device != "ilgpu-cpu").ToList();
        // Both decode matvecs: the group-reduction one GPUs use, and the thread-per-column one of the CPU accelerator.
        gpu.ThreadPerColumn = !gpu.ThreadPerColumn;
        try { results.AddRange(KernelCheck.Run(gpu, seed: 4, large: false).Where(r => r.Kernel.StartsWith("matmul"))); }
        finally { gpu.ThreadPerColumn = !gpu.ThreadPerColumn; }
        Assert.True(results.Count >= 70, $"only {results.Count} kernel checks ran");
        foreach (var r in results)
            Assert.True(r.RelativeError < KernelCheck.Tolerance,
                $"{device} {r.Kernel} {r.Shape}: relative error {r.RelativeError:E2}");
    }

    [Theory]
    [MemberData(nameof(Devices))]
    public void Every_training_kernel_matches_its_reference(string device)
    {
        using var be = device == "ilgpu-cpu" ? null : (IlgpuBackend)BackendFactory.Create(device);
        var results = Training.TrainingKernelCheck.Run(be ?? Backend.Value, seed: 2, small: device == "ilgpu-cpu")
            .ToList();
        Assert.True(results.Count >= 61, $"only {results.Count} training kernel checks ran");
        foreach (var r in results)
            Assert.True(r.RelativeError < KernelCheck.Tolerance,
                $"{device} {r.Kernel} {r.Shape}: relative error {r.RelativeError:E2}");
    }

    [Fact]
    public void Argmax_runs_on_the_device()
    {
        var rng = new Random(5);
        var x = Enumerable.Range(0, 50257).Select(_ => (float)rng.NextDouble()).ToArray();
        x[31337] = 2f; x[40000] = 2f;   // a tie: the lower index wins, as torch.argmax
        using var b = Backend.Value.Upload(x);
        Assert.Equal(31337, Backend.Value.Argmax(b, x.Length));
    }

    [Theory]
    [InlineData("a_fox", "tiny-gpt2", "ilgpu-cpu")]
    [InlineData("a_romeo", "tiny-gpt2-hub", "ilgpu-cpu")]
    [InlineData("bf16_fox", "tiny-gpt2-bf16", "ilgpu-cpu")]
    [InlineData("a_fox", "tiny-gpt2", "reference")]
    [InlineData("a_romeo", "tiny-gpt2-hub", "reference")]
    [InlineData("bf16_fox", "tiny-gpt2-bf16", "reference")]
    public void Model_matches_transformers(string caseName, string model, string device) =>
        ForwardTests.CheckForward(caseName, model, device);

    /// <summary>
    /// A GPT-2 with a 500-token vocabulary (random weights, head_dim 16 and 64): small enough that ILGPU's CPU
    /// accelerator runs a hundred decode steps (matvec with its epilogues, attention over the cache past one chunk,
    /// argmax, batched beam steps) in seconds.
    /// </summary>
    private static Model.Gpt2Model SmallVocabulary(string device, int nHead,
        WeightPrecision precision = WeightPrecision.Float32)
    {
        string dir = Path.Combine(Path.GetTempPath(), $"sgpt-small-vocab-{nHead}");
        var config = new Loading.Gpt2Config { NLayer = 2, NHead = nHead, NEmbd = 64, NPositions = 96, VocabSize = 500 };
        lock (typeof(IlgpuTests))
            if (!File.Exists(Path.Combine(dir, "config.json")))
            {
                Directory.CreateDirectory(dir);
                Training.RandomCheckpoint.Write(config, dir, "f32", seed: 5);
            }
        var file = Loading.SafetensorsFile.Open(Path.Combine(dir, "model.safetensors"));
        return new Model.Gpt2Model(new Loading.Gpt2Checkpoint(file, Loading.ModelFolder.LoadConfig(dir)),
            BackendFactory.Create(device), precision);
    }

    [Theory]
    [InlineData(4, WeightPrecision.Float32)]
    [InlineData(1, WeightPrecision.Float16)]
    public void Decoding_on_the_device_matches_the_reference(int nHead, WeightPrecision precision)
    {
        using var device = SmallVocabulary("ilgpu-cpu", nHead, precision);
        using var reference = SmallVocabulary("reference", nHead, precision);
        int[] prompt = [3, 141, 59, 26, 5];
        var greedy = new Decoding.GenerationConfig { MaxNewTokens = 20, EosTokenId = null };
        var beams = greedy with { NumBeams = 3, MaxNewTokens = 6 };
        Assert.Equal(new Decoding.Generator(reference).Generate(prompt, greedy).Sequences[0].Ids,
            new Decoding.Generator(device).Generate(prompt, greedy).Sequences[0].Ids);   // greedy: the device's argmax
        Assert.Equal(new Decoding.Generator(reference).Generate(prompt, beams).Sequences[0].Ids,
            new Decoding.Generator(device).Generate(prompt, beams).Sequences[0].Ids);    // beams: batched decode steps
        // The logits of a prompt and of single decode steps, position by position.
        using var a = device.CreateSession(96);
        using var b = reference.CreateSession(96);
        float[] la = new float[500], lb = new float[500];
        a.Append(prompt, la); b.Append(prompt, lb);
        Assert.True(Fixtures.MaxAbsDiff(lb, la) <= 1e-4f, $"prompt logits differ by {Fixtures.MaxAbsDiff(lb, la)}");
        for (int step = 0; step < 70; step++)   // past one 64-position attention chunk
        {
            a.Append([step * 7 % 500], la); b.Append([step * 7 % 500], lb);
            Assert.True(Fixtures.MaxAbsDiff(lb, la) <= 1e-4f,
                $"step {step}: logits differ by {Fixtures.MaxAbsDiff(lb, la)}");
        }
    }

    [Fact]
    public void Device_buffers_are_released()
    {
        using var model = SmallVocabulary("ilgpu-cpu", 4);
        var be = (IlgpuBackend)model.Backend;
        var config = new Decoding.GenerationConfig { MaxNewTokens = 3, EosTokenId = null };
        new Decoding.Generator(model).Generate([1, 2], config);   // the backend's reused id/argmax buffers now exist
        long before = be.LiveBuffers;
        for (int i = 0; i < 10; i++)
            new Decoding.Generator(model).Generate([1, 2], config with { NumBeams = 1 + i % 2 });
        Assert.Equal(before, be.LiveBuffers);
    }

    [Theory]
    [InlineData("greedy_p3_40")]
    [InlineData("greedy_p1_nrng3")]
    [InlineData("beam3_eos_min_new10")]
    [InlineData("grid_v_nb3_lp1.0_esF")]
    public void Generation_matches_transformers_on_ilgpu_cpu(string name) => GenerationTests.Check(name, "ilgpu-cpu");

    [Fact]
    public void Sixteen_bit_weights_stay_sixteen_bit_on_the_device_and_match_the_reference()
    {
        Model.Gpt2Model Load(string device, WeightPrecision p) => Model.Gpt2Model.Load(Fixtures.Model("tiny-gpt2"),
            new Model.ModelLoadOptions { Device = device, Precision = p, TokenizerDirectory = Fixtures.TokenizerDir });
        using var gpu = Load("ilgpu-cpu", WeightPrecision.Float16);
        using var reference = Load("reference", WeightPrecision.Float16);
        using var f32 = Load("reference", WeightPrecision.Float32);
        int[] ids = reference.Tokenizer!.Encode("The quick brown fox");   // a prompt (rows > 1): the tiled matmul
        var a = gpu.Forward(ids).Logits;
        Assert.True(Fixtures.MaxAbsDiff(reference.Forward(ids).Logits, a) <= 1e-4f,
            "16-bit weights: ilgpu-cpu vs reference");
        Assert.True(Fixtures.MaxAbsDiff(f32.Forward(ids).Logits, a) > 1e-4f,
            "the device did not use the rounded 16-bit weights");
        long bytes16 = ((IlgpuBackend)gpu.Backend).LiveBytes;
        using var gpu32 = Load("ilgpu-cpu", WeightPrecision.Float32);
        long bytes32 = ((IlgpuBackend)gpu32.Backend).LiveBytes;
        Assert.True(bytes16 < 0.6 * bytes32,
            $"device memory: {bytes16:N0} bytes with 16-bit weights, {bytes32:N0} with float32");
    }

    [Fact]
    public void Ptx_of_every_kernel_assembles_for_sm_90()
    {
        string ptxas = Environment.GetEnvironmentVariable("SCRATCHGPT_PTXAS") ?? "ptxas";
        string dir = Directory.CreateTempSubdirectory("sgpt-ptx").FullName;
        try
        {
            var kernels = KernelCompiler.Compile("ptx", "sm_90").ToList();
            Assert.True(kernels.Count >= 28, $"only {kernels.Count} kernels");
            foreach (var (name, source) in kernels)
            {
                Assert.Contains(".target sm_", source);
                string path = Path.Combine(dir, name + ".ptx");
                File.WriteAllText(path, source);
                var (code, output) = Tool(ptxas, "-arch=sm_90", path, "-o", Path.Combine(dir, name + ".cubin"));
                Assert.True(code == 0, $"ptxas rejected {name}: {output}");
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Opencl_c_of_every_kernel_passes_clang()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-cl").FullName;
        try
        {
            var kernels = KernelCompiler.Compile("opencl").ToList();
            Assert.True(kernels.Count >= 28, $"only {kernels.Count} kernels");
            foreach (var (name, source) in kernels)
            {
                string path = Path.Combine(dir, name + ".cl");
                File.WriteAllText(path, source);
                var (code, output) = Tool("clang-15", "-x", "cl", "-cl-std=CL2.0", "-target", "spir64", "-Xclang",
                    "-finclude-default-header", "-fsyntax-only", path);
                Assert.True(code == 0, $"clang rejected {name}: {output}");
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Runs a checking tool; a missing tool fails the test with how to get it.</summary>
    private static (int Code, string Output) Tool(string file, params string[] args)
    {
        var info = new System.Diagnostics.ProcessStartInfo(file)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
        };
        foreach (var a in args) info.ArgumentList.Add(a);
        try
        {
            using var p = System.Diagnostics.Process.Start(info)!;
            string output = p.StandardOutput.ReadToEnd() + p.StandardError.ReadToEnd();
            p.WaitForExit();
            return (p.ExitCode, output);
        }
        catch (System.ComponentModel.Win32Exception)
        {
            throw new InvalidOperationException($"{file} not found: .ci/run installs it (clang-15 from apt; ptxas " +
                "unpacked from Debian's " + "nvidia-cuda-toolkit, its path in SCRATCHGPT_PTXAS)");
        }
    }
}

public class BackendSelectionTests
{
    [Fact]
    public void Auto_falls_back_to_the_cpu_and_says_why()
    {
        var log = new List<string>();
        using var be = BackendFactory.Create("auto", log.Add);
        if (be.Kind == "cpu") Assert.Contains(log, l => l.StartsWith("cuda unavailable"));
    }

    [Fact]
    public void Cuda_failure_names_the_missing_driver()
    {
        if (File.Exists("/usr/lib/x86_64-linux-gnu/libcuda.so.1")) return;   // a GPU machine: covered by the CUDA run
        var e = Assert.Throws<BackendException>(() => BackendFactory.Create("cuda"));
        Assert.Contains("libcuda.so.1", e.Message);
    }

    [Theory]
    [InlineData("tpu")]
    [InlineData("opencl:x")]
    [InlineData("cuda:-1")]
    public void Bad_device_names_are_clear_errors(string device)
    {
        var e = Assert.Throws<ArgumentException>(() => BackendFactory.Create(device));
        Assert.Contains("--device", e.Message);
    }

    [Fact]
    public void A_missing_device_index_names_the_device()
    {
        var e = Assert.Throws<BackendException>(() => BackendFactory.Create("ilgpu-cpu:99"));
        Assert.Contains("ilgpu-cpu:99", e.Message);
    }
}

/// <summary>Training on ILGPU's CPU accelerator: a whole model's gradients, clipping and AdamW against the CPU
/// engine.</summary>
public sealed class IlgpuTrainingTests
{
    // Odd sizes on purpose: 3 heads of 8, MLP 96, 2 sequences of 13 tokens — nothing is a multiple of a 16-wide tile.
    private static readonly Loading.Gpt2Config Small = new()
    {
        NLayer = 2,
        NHead = 3,
        NEmbd = 24,
        NPositions = 32,
        VocabSize = 333,
    };

    private static (int[] Ids, int[] Targets) Batch(int batch, int seq, int seed)
    {
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(Small.VocabSize)).ToArray();
        var targets = Enumerable.Range(0, batch * seq)
            .Select(i => i % seq == seq - 1 ? -100 : rng.Next(Small.VocabSize)).ToArray();
        return (ids, targets);
    }

    [Theory]
    [InlineData(0f)]
    [InlineData(0.1f)]
    public void Device_gradients_match_the_cpu_backward(float dropout)
    {
        var p = Training.Gpt2Parameters.Initialize(Small, 7);
        var (ids, targets) = Batch(2, 13, 3);
        var cpuGrads = new float[p.Count]; var gpuGrads = new float[p.Count];
        double cpuLoss, gpuLoss;
        using (var cpu = new Training.CpuTrainingEngine(p, new Training.AdamW(p, 0.01f), (dropout, dropout, dropout)))
        {
            cpu.ZeroGradients();
            cpuLoss = cpu.AddGradients(ids, targets, 2, 13, 0.5f, dropoutSeed: 11);
            cpuLoss += cpu.AddGradients(ids, targets, 2, 13, 0.5f, dropoutSeed: 12);   // accumulation adds
            cpu.ReadGradients(cpuGrads);
        }
        using (var gpu = new Training.DeviceTrainingModel(IlgpuTests.Backend.Value, p, new Training.AdamW(p, 0.01f),
            (dropout, dropout, dropout)))
        {
            gpu.ZeroGradients();
            gpuLoss = gpu.AddGradients(ids, targets, 2, 13, 0.5f, dropoutSeed: 11);
            gpuLoss += gpu.AddGradients(ids, targets, 2, 13, 0.5f, dropoutSeed: 12);
            gpu.ReadGradients(gpuGrads);
        }
        Assert.Equal(cpuLoss, gpuLoss, 1e-4);
        foreach (var t in p.Tensors)
        {
            var c = t.Of(cpuGrads); var g = t.Of(gpuGrads);
            float scale = Math.Abs(System.Numerics.Tensors.TensorPrimitives.MaxMagnitude(c));
            Assert.True(scale > 0, $"{t.Name}: no gradient on the CPU");
            for (int i = 0; i < c.Length; i++)
                Assert.True(Math.Abs(c[i] - g[i]) <= 1e-4 * scale + 1e-7,
                    $"{t.Name}[{i}]: cpu {c[i]:E4}, ilgpu-cpu {g[i]:E4} (largest {scale:E2})");
        }
    }

    [Fact]
    public void Clipping_and_adamw_on_the_device_match_the_cpu()
    {
        var cpuParams = Training.Gpt2Parameters.Initialize(Small, 8);
        var gpuParams = cpuParams.Clone();
        var (ids, targets) = Batch(2, 13, 4);
        var cpuOpt = new Training.AdamW(cpuParams, 0.1f); var gpuOpt = new Training.AdamW(gpuParams, 0.1f);
        using var cpu = new Training.CpuTrainingEngine(cpuParams, cpuOpt, (0f, 0f, 0f));
        using var gpu = new Training.DeviceTrainingModel(IlgpuTests.Backend.Value, gpuParams, gpuOpt, (0f, 0f, 0f));
        for (int step = 0; step < 3; step++)
        {
            foreach (var e in new Training.ITrainingEngine[] { cpu, gpu })
            {
                e.ZeroGradients();
                e.AddGradients(ids, targets, 2, 13, 1f, 0);
            }
            double cpuNorm = cpu.ClipGradients(0.5), gpuNorm = gpu.ClipGradients(0.5);
            Assert.Equal(cpuNorm, gpuNorm, cpuNorm * 1e-4);
            Assert.True(cpuNorm > 0.5, $"norm {cpuNorm}: the clip should act");
            cpu.Update(1e-3f); gpu.Update(1e-3f);
        }
        gpu.CopyToHost();
        Assert.Equal(3, gpuOpt.Step);
        for (int i = 0; i < cpuParams.Count; i++)
            Assert.True(Math.Abs(cpuParams.Values[i] - gpuParams.Values[i]) < 2e-5,
                $"parameter {i}: cpu {cpuParams.Values[i]}, ilgpu-cpu {gpuParams.Values[i]}");
        Assert.True(cpuOpt.V.Zip(gpuOpt.V).All(v => Math.Abs(v.First - v.Second) <= 1e-3 * Math.Abs(v.First) + 1e-12),
            "Adam's second moments differ");
    }
}
