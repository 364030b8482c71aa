using ScratchGpt.Backends;
using ScratchGpt.Backends.OpenCl;

namespace ScratchGpt.Tests;

/// <summary>
/// The OpenCL backend on whatever OpenCL device is installed (PoCL on the CPU in CI). These tests do
/// not skip: without an OpenCL device they fail, and .ci/run installs PoCL.
/// </summary>
public class OpenClTests
{
    internal static readonly Lazy<OpenClBackend> Backend = new(() => OpenClBackend.Create(0, gpuOnly: false));

    [Fact]
    public void Every_kernel_matches_the_cpu_reference()
    {
        var results = KernelCheck.Run(Backend.Value, seed: 1).ToList();
        Assert.True(results.Count >= 63, $"only {results.Count} kernel checks ran");
        foreach (var r in results)
            Assert.True(r.RelativeError < 1e-4, $"{r.Kernel} {r.Shape}: relative error {r.RelativeError:E2}");
    }

    [Fact]
    public void Every_training_kernel_matches_its_cpu_reference()
    {
        var results = Training.TrainingKernelCheck.Run(Backend.Value, seed: 2).ToList();
        Assert.True(results.Count >= 61, $"only {results.Count} training kernel checks ran");
        foreach (var r in results)
            Assert.True(r.RelativeError < 1e-4, $"{r.Kernel} {r.Shape}: relative error {r.RelativeError:E2}");
    }

    [Fact]
    public void A_batched_decode_step_matches_the_cpu_one_sequence_at_a_time()
    {
        // Rows of different positions through one pass: each row's attention must read its own session's cache.
        var expected = BatchedDecodeTests.OneByOne(Fixtures.Load("tiny-gpt2"), 4, 2);
        var actual = BatchedDecodeTests.Batched(Fixtures.Load("tiny-gpt2", "opencl"), 4, 2);
        for (int step = 0; step < 2; step++)
            Assert.True(Fixtures.MaxAbsDiff(expected[step], actual[step]) <= 1e-4f, $"step {step}: {Fixtures.MaxAbsDiff(expected[step], actual[step])}");
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
    [InlineData("a_fox", "tiny-gpt2")]
    [InlineData("a_romeo", "tiny-gpt2-hub")]
    [InlineData("bf16_fox", "tiny-gpt2-bf16")]
    public void Model_matches_transformers_on_opencl(string caseName, string model) =>
        ForwardTests.CheckForward(caseName, model, "opencl");

    [Theory]
    [InlineData("greedy_p3_40")]
    [InlineData("greedy_p1_nrng3")]
    [InlineData("beam3_eos_min_new10")]
    [InlineData("grid_v_nb3_lp1.0_esF")]
    public void Generation_matches_transformers_on_opencl(string name) => GenerationTests.Check(name, "opencl");

    [Theory]
    [InlineData(Backends.WeightPrecision.Float16)]
    [InlineData(Backends.WeightPrecision.BFloat16)]
    public void Sixteen_bit_weights_stay_sixteen_bit_on_the_device_and_match_the_cpu(Backends.WeightPrecision precision)
    {
        Model.Gpt2Model Load(string device, Backends.WeightPrecision p) => Model.Gpt2Model.Load(Fixtures.Model("tiny-gpt2"),
            new Loading.ModelLoadOptions { Device = device, Precision = p, TokenizerDirectory = Fixtures.TokenizerDir });
        using var gpu = Load("opencl", precision);
        using var cpu = Load("cpu", precision);
        using var f32 = Load("cpu", Backends.WeightPrecision.Float32);
        int[] ids = cpu.Tokenizer!.Encode("The quick brown fox jumped over the lazy dog");
        var a = gpu.Forward(ids).Logits;
        Assert.True(Fixtures.MaxAbsDiff(cpu.Forward(ids).Logits, a) <= 1e-4f, "16-bit weights: OpenCL vs CPU");
        Assert.True(Fixtures.MaxAbsDiff(f32.Forward(ids).Logits, a) > 1e-4f, "the device did not use the rounded 16-bit weights");
        using var gpu32 = Load("opencl", Backends.WeightPrecision.Float32);
        long bytes16 = ((OpenClBackend)gpu.Backend).LiveBytes, bytes32 = ((OpenClBackend)gpu32.Backend).LiveBytes;
        Assert.True(bytes16 < 0.6 * bytes32, $"device memory: {bytes16:N0} bytes with 16-bit weights, {bytes32:N0} with float32");
        var greedy = new Decoding.GenerationConfig { MaxNewTokens = 12 };
        Assert.Equal(new Decoding.Generator(cpu).Generate(ids, greedy).Sequences[0].NewIds, new Decoding.Generator(gpu).Generate(ids, greedy).Sequences[0].NewIds);
    }

    [Fact]
    public void Device_buffers_are_released()
    {
        var model = Fixtures.Load("tiny-gpt2", "opencl");
        var be = (OpenClBackend)model.Backend;
        new Decoding.Generator(model).Generate([464, 2068], new Decoding.GenerationConfig { MaxNewTokens = 3, EosTokenId = 50256 });   // the backend's reused id/argmax buffers now exist
        long before = be.LiveBuffers;
        for (int i = 0; i < 20; i++)
            new Decoding.Generator(model).Generate([464, 2068], new Decoding.GenerationConfig { MaxNewTokens = 3, EosTokenId = 50256 });
        Assert.Equal(before, be.LiveBuffers);
    }
}

public class BackendSelectionTests
{
    [Fact]
    public void Auto_falls_back_to_the_cpu_and_says_why()
    {
        var log = new List<string>();
        using var be = BackendFactory.Create("auto", log.Add);
        // This machine has no NVIDIA driver; PoCL is an OpenCL CPU device, not a GPU, so auto lands on the CPU.
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
    public void Opencl_index_out_of_range_names_the_range()
    {
        var e = Assert.Throws<BackendException>(() => BackendFactory.Create("opencl:99"));
        Assert.Contains("opencl:99", e.Message);
    }
}

/// <summary>Device faults: a kernel that does not compile, an allocation the device cannot hold, a cancelled generation.</summary>
[Collection("console")]
public class OpenClFaultTests
{
    [Fact]
    public void Kernel_that_does_not_compile_names_the_step_and_the_build_log()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-kern").FullName;
        string? old = Environment.GetEnvironmentVariable("SCRATCHGPT_KERNELS");
        try
        {
            foreach (var f in Directory.GetFiles(KernelSource.Directory)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            File.AppendAllText(Path.Combine(dir, "matmul.cl"), "\n__kernel void broken(__global float* x) { x[0] = undefined_name; }\n");
            Environment.SetEnvironmentVariable("SCRATCHGPT_KERNELS", dir);
            var e = Assert.Throws<BackendException>(() => OpenClBackend.Create(0, gpuOnly: false));
            Assert.Contains("clBuildProgram", e.Message);
            Assert.Contains("undefined_name", e.Message);
            Assert.DoesNotContain('\n', e.Message);
            // From the command line: one line, exit 1, and no fallback because the device was named.
            var (code, _, err) = CliTests.RunCli("generate", "--model", Fixtures.Model("tiny-gpt2"), "--device", "opencl", "--prompt", "Hi", "--max-new-tokens", "2");
            Assert.Equal(1, code);
            Assert.Contains("error: OpenCL clBuildProgram failed", err);
        }
        finally
        {
            Environment.SetEnvironmentVariable("SCRATCHGPT_KERNELS", old);
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Allocation_past_the_device_memory_is_a_clear_error()
    {
        var model = Fixtures.Load("tiny-gpt2", "opencl");
        var be = (OpenClBackend)model.Backend;
        long before = be.LiveBuffers;
        var e = Assert.Throws<BackendException>(() => be.Allocate(1L << 40));
        Assert.Contains("clCreateBuffer", e.Message);
        Assert.Equal(before, be.LiveBuffers);
    }

    [Fact]
    public void Soak_on_opencl_keeps_the_device_buffer_count_constant()
    {
        var model = Fixtures.Load("tiny-gpt2", "opencl");
        var be = (OpenClBackend)model.Backend;
        int[] prompt = Fixtures.Tokenizer.Encode("ROMEO:");
        var configs = new[]
        {
            new Decoding.GenerationConfig { MaxNewTokens = 3, EosTokenId = 50256 },
            new Decoding.GenerationConfig { MaxNewTokens = 3, NumBeams = 2, EosTokenId = 50256, PadTokenId = 50256 },
        };
        new Decoding.Generator(model).Generate(prompt, configs[0]);
        long before = be.LiveBuffers;
        int count = 300 * Fixtures.LongRunScale;
        for (int i = 0; i < count; i++) new Decoding.Generator(model).Generate(prompt, configs[i % 2]);
        Assert.Equal(before, be.LiveBuffers);
    }

    [Fact]
    public async Task Cancelled_generation_stops_and_releases_device_memory()
    {
        var model = Fixtures.Load("tiny-gpt2", "opencl");
        var be = (OpenClBackend)model.Backend;
        long before = be.LiveBuffers;
        using var cts = new CancellationTokenSource();
        int tokens = 0;
        // Cancelling ends the stream after the step in flight (no exception: the tokens so far stand).
        await foreach (var _ in new Decoding.Generator(model).StreamAsync([464, 2068], new Decoding.GenerationConfig { MaxNewTokens = 100, EosTokenId = null }, cts.Token))
            if (++tokens == 3) cts.Cancel();
        Assert.Equal(3, tokens);   // stopped within one step of the cancel
        Assert.Equal(before, be.LiveBuffers);
    }
}

/// <summary>
/// Training on the OpenCL device (PoCL in CI): the backward kernels of kernels/ against the CPU's backward,
/// which the gradient checks in TrainingTests hold to finite differences.
/// </summary>
[Collection("console")]
public sealed class OpenClTrainingTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sgpt-cltrain").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static Lazy<OpenClBackend> Backend => OpenClTests.Backend;

    // Odd sizes on purpose: 3 heads of 8, MLP 96, 2 sequences of 13 tokens — nothing is a multiple of a 16-wide tile.
    private static readonly Loading.Gpt2Config Small = new() { NLayer = 2, NHead = 3, NEmbd = 24, NPositions = 32 };

    private static (int[] Ids, int[] Targets) Batch(int batch, int seq, int seed)
    {
        var rng = new Random(seed);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(50257)).ToArray();
        var targets = Enumerable.Range(0, batch * seq).Select(i => i % seq == seq - 1 ? -100 : rng.Next(50257)).ToArray();
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
        using (var gpu = new Training.DeviceTrainingModel(Backend.Value, p, new Training.AdamW(p, 0.01f), (dropout, dropout, dropout)))
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
                Assert.True(Math.Abs(c[i] - g[i]) <= 1e-4 * scale + 1e-7, $"{t.Name}[{i}]: cpu {c[i]:E4}, opencl {g[i]:E4} (largest {scale:E2})");
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
        using var gpu = new Training.DeviceTrainingModel(Backend.Value, gpuParams, gpuOpt, (0f, 0f, 0f));
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
            Assert.True(Math.Abs(cpuParams.Values[i] - gpuParams.Values[i]) < 2e-5, $"parameter {i}: cpu {cpuParams.Values[i]}, opencl {gpuParams.Values[i]}");
        Assert.True(cpuOpt.V.Zip(gpuOpt.V).All(v => Math.Abs(v.First - v.Second) <= 1e-3 * Math.Abs(v.First) + 1e-12), "Adam's second moments differ");
    }

    [Fact]
    public void Train_command_runs_on_opencl_and_its_folder_loads()
    {
        string data = Path.Combine(_dir, "data.txt"), outDir = Path.Combine(_dir, "out");
        File.WriteAllText(data, File.ReadAllText(Path.Combine(Fixtures.RepoRoot, "..", "shared", "corpus", "tinyshakespeare.txt"))[..6_000]);
        var (code, stdout, stderr) = CliTests.RunCli("train", "--config", "gpt2", "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
            "--n-positions", "32", "--data", data, "--block-size", "32", "--batch-size", "4", "--epochs", "1", "--max-steps", "6",
            "--lr", "3e-3", "--device", "opencl", "--out", outDir);
        Assert.True(code == 0, stderr);
        Assert.Contains("Device: opencl", stderr);
        Assert.Contains("Validation Loss", stdout);
        var model = Model.Gpt2Model.Load(outDir, new Loading.ModelLoadOptions());
        Assert.Equal(1, model.Config.NLayer);
    }
}
