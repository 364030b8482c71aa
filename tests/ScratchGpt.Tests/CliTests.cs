using System.Text.Json.Nodes;
using ScratchGpt.Cli;

namespace ScratchGpt.Tests;

/// <summary>The scratchgpt command, run in-process: JSON output and one-line errors with non-zero exits.</summary>
[Collection("console")]
public class CliTests
{
    /// <summary>Runs scratchgpt in-process with the console captured (other test classes use it too).</summary>
    public static (int Code, string Out, string Err) RunCli(params string[] args) => Run(args);

    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var oldOut = Console.Out; var oldErr = Console.Error;
        var o = new StringWriter(); var e = new StringWriter();
        Console.SetOut(o); Console.SetError(e);
        try
        {
            var entry = typeof(ScratchGpt.Cli.Common).Assembly.EntryPoint!;
            var result = entry.Invoke(null, [args]);
            int code = result is Task<int> t ? t.GetAwaiter().GetResult() : (int)result!;
            return (code, o.ToString(), e.ToString());
        }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    private static string Model => Fixtures.Model("tiny-gpt2");

    [Fact]
    public void Generate_json_has_the_fixture_tokens()
    {
        var c = GenerationTests.Find("greedy_p1_20");
        var (code, stdout, _) = Run("generate", "--model", Model, "--device", "cpu", "--prompt", "Transformers are the",
            "--max-new-tokens", "20", "--json");
        Assert.Equal(0, code);
        var j = JsonNode.Parse(stdout)!;
        var row = j["prompts"]![0]!["sequences"]![0]!;
        Assert.Equal(Fixtures.Ints(c["sequences"]![0]), Fixtures.Ints(row["ids"]));                 // prompt + new
        Assert.Equal(Fixtures.Ints(c["new_tokens"]![0]), Fixtures.Ints(row["new_ids"]));
        Assert.Equal(c["texts"]![0]!.GetValue<string>(), row["new_text"]!.GetValue<string>());
        Assert.Equal("Transformers are the" + c["texts"]![0]!.GetValue<string>(), row["text"]!.GetValue<string>());
        Assert.Equal(c["sequence_logprob"]![0]!["sequence_logprob"]!.GetValue<double>(),
            row["score"]!.GetValue<double>(), 1e-3);
        Assert.False(j["stopped"]!.GetValue<bool>());
        Assert.Equal("cpu", j["device"]!.GetValue<string>());
    }

    [Fact]
    public void Bench_json_has_the_speed_fields_and_its_profile_accounts_for_every_call()
    {
        var (code, stdout, err) = Run("bench", "--model", Model, "--device", "cpu", "--prompt-tokens", "8",
            "--new-tokens", "6", "--runs", "1", "--profile", "--json");
        Assert.True(code == 0, err);
        var j = JsonNode.Parse(stdout)!;
        foreach (var key in new[] { "prefill_tok_s", "decode_tok_s", "decode_ms_per_token", "ttft_ms", "load_s",
            "peak_memory_bytes", "floor_ms_per_token", "fraction_of_floor", "device" })
            Assert.NotNull(j[key]);
        Assert.True(j["fraction_of_floor"]!.GetValue<double>() > 0);
        var profile = j["profile"]!.AsArray();
        double Calls(string prefix) =>
            profile.Where(r => r!["operation"]!.GetValue<string>().StartsWith(prefix))
            .Sum(r => r!["calls_per_token"]?.GetValue<double>() ?? 0);
        // tiny-gpt2 has 2 blocks: per decoded token 4 matmuls a block + the LM head, 2 attentions, 2·2 + 1 layernorms.
        Assert.Equal(2 * 4 + 1, Calls("matmul"));
        Assert.Equal(2, Calls("attention"));
        Assert.Equal(5, Calls("layernorm"));
        Assert.Contains(profile,
            r => r!["operation"]!.GetValue<string>() == "matmul 64→50257" && r["weight_gb_s"] is not null);
        // attention's row has the KV cache's bandwidth instead
        var attention = profile.Single(r => r!["operation"]!.GetValue<string>() == "attention")!;
        Assert.True(attention["kv_cache_gb_s"]!.GetValue<double>() > 0);
        Assert.Null(attention["weight_gb_s"]);
        // the rows add up to the step
        Assert.InRange(profile.Sum(r => r!["share"]!.GetValue<double>()), 0.999, 1.001);
    }

    [Fact]
    public void Bench_counts_the_bytes_a_backend_really_reads_per_weight()
    {
        // The SIMD CPU backend reads Q4_0 with its scales widened to float32 (16 bytes of codes and 4 of scale per 32
        // weights), Q8_0 with the format's float16 scales where the CPU has AVX-512 (32 bytes and 2), widened
        // elsewhere (32 and 4); the reference backend reads both as float32.
        long Bytes(string device, string format)
        {
            var (code, stdout, err) = Run("bench", "--model", Model, "--device", device, "--quantize", format,
                "--prompt-tokens", "4", "--new-tokens", "2", "--runs", "1", "--json");
            Assert.True(code == 0, err);
            return JsonNode.Parse(stdout)!["weight_bytes_per_token"]!.GetValue<long>();
        }
        long reference = Bytes("reference", "q8_0");
        double q8 = System.Runtime.Intrinsics.X86.Avx512BW.IsSupported ? 34 : 36;
        Assert.Equal(4.0 / (q8 / 32), (double)reference / Bytes("cpu", "q8_0"), 3);
        Assert.Equal(4.0 / (20.0 / 32), (double)reference / Bytes("cpu", "q4_0"), 3);
    }

    [Fact]
    public void Bench_floor_counts_the_kv_cache_each_step_reads_as_the_backend_holds_it()
    {
        // A step at position p reads k and v of positions 0..p in each layer: n_layer · 2 · n_embd values a position.
        // The timed steps of an 8-token prompt and 6 new tokens are at positions 8..12, i.e. 11 positions on average.
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(Model, "config.json")))!;
        long valuesPerPosition = config["n_layer"]!.GetValue<long>() * 2 * config["n_embd"]!.GetValue<long>();
        JsonNode Bench(string device, string kvCache, int batch = 1)
        {
            var (code, stdout, err) = Run("bench", "--model", Model, "--device", device, "--kv-cache", kvCache,
                "--prompt-tokens", "8", "--new-tokens", "6", "--batch", batch.ToString(), "--runs", "1", "--json");
            Assert.True(code == 0, err);
            return JsonNode.Parse(stdout)!;
        }
        long Kv(JsonNode j) => j["kv_cache_bytes_per_token"]!.GetValue<long>();
        Assert.Equal(valuesPerPosition * 4 * 11, Kv(Bench("cpu", "f32")));
        Assert.Equal(valuesPerPosition * 2 * 11, Kv(Bench("cpu", "f16")));   // halves
        Assert.Equal(valuesPerPosition * 4 * 11, Kv(Bench("reference", "f16")));   // rounded, held as float32
        // the floor is a step's weights and every sequence's cache over the bandwidth: with --batch 3 the weights
        // once and three caches
        var j = Bench("cpu", "f16", batch: 3);
        double expected = (j["weight_bytes_per_token"]!.GetValue<long>() + 3 * Kv(j))
            / (j["bandwidth_gb_s"]!.GetValue<double>() * 1e9) * 1000;
        Assert.Equal(expected, j["floor_ms_per_token"]!.GetValue<double>(), expected * 0.01 + 0.001);
    }

    [Fact]
    public void Tokenize_json_matches_the_tokenizer()
    {
        var (code, stdout, _) = Run("tokenize", "--model", Model, "--text", "Hello world", "--json");
        Assert.Equal(0, code);
        Assert.Equal([15496, 995], Fixtures.Ints(JsonNode.Parse(stdout)!["ids"]));
    }

    [Theory]
    [InlineData("model folder not found", "generate", "--model", "/no/such/dir", "--prompt", "x")]
    [InlineData("top_p (--top-p) must be in (0, 1]", "generate", "--model", "MODEL", "--device", "cpu", "--prompt", "x",
        "--do-sample", "--top-p", "1.5")]
    [InlineData("temperature", "generate", "--model", "MODEL", "--device", "cpu", "--prompt", "x", "--do-sample",
        "--temperature", "0")]
    [InlineData("n_positions (256)", "generate", "--model", "MODEL", "--device", "cpu", "--prompt", "x",
        "--max-new-tokens", "300")]
    [InlineData("--layer 9 is out of range: valid values are 0..1", "attention", "--model", "MODEL", "--device", "cpu",
        "--prompt", "x", "--layer", "9")]
    [InlineData("--head 4 is out of range: valid values are 0..3", "attention", "--model", "MODEL", "--device", "cpu",
        "--prompt", "x", "--head", "4")]
    [InlineData("unknown device 'tpu'", "generate", "--model", "MODEL", "--device", "tpu", "--prompt", "x")]
    public void Bad_input_is_one_clear_line_and_a_nonzero_exit(string expected, params string[] args)
    {
        args = args.Select(a => a == "MODEL" ? Model : a).ToArray();
        var (code, _, stderr) = Run(args);
        Assert.NotEqual(0, code);
        var errorLines = stderr.Split('\n').Where(l => l.StartsWith("error:")).ToList();
        Assert.Single(errorLines);
        Assert.Contains(expected, errorLines[0]);
        Assert.DoesNotContain("   at ", stderr);   // no stack trace without --verbose
    }

    [Fact]
    public void Broken_checkpoints_are_named()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-bad").FullName;
        try
        {
            File.Copy(Path.Combine(Model, "config.json"), Path.Combine(dir, "config.json"));
            var bytes = File.ReadAllBytes(Path.Combine(Model, "model.safetensors"));
            File.WriteAllBytes(Path.Combine(dir, "model.safetensors"), bytes[..(bytes.Length / 2)]);
            var (code, _, stderr) = Run("generate", "--model", dir, "--device", "cpu", "--prompt", "x");
            Assert.Equal(1, code);
            Assert.Contains("model.safetensors", stderr);
            Assert.Contains("truncated", stderr);

            File.WriteAllText(Path.Combine(dir, "config.json"), "{\"model_type\": \"llama\", \"n_embd\": 64}");
            (code, _, stderr) = Run("generate", "--model", dir, "--device", "cpu", "--prompt", "x");
            Assert.Equal(1, code);
            Assert.Contains("only GPT-2", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Steps_json_has_the_step_table()
    {
        var (code, stdout, _) = Run("steps", "--model", Model, "--device", "cpu", "--prompt", "Transformers are the",
            "--steps", "2", "--choices", "3", "--json");
        Assert.Equal(0, code);
        var steps = JsonNode.Parse(stdout)!["steps"]!.AsArray();
        Assert.Equal(2, steps.Count);
        Assert.Equal(198, steps[0]!["choices"]![0]!["id"]!.GetValue<int>());
        Assert.Equal(0.033, steps[0]!["choices"]![0]!["prob"]!.GetValue<double>(), 3);
    }

    [Fact]
    public void Each_bench_run_is_set_against_the_bandwidth_probed_just_before_it()
    {
        // 100 MB a step. Runs 1 and 2 each reach half of their own floor, one on a quiet host (40 GB/s, 200
        // steps/s), one on a busy one (30 GB/s, 150 steps/s); run 3 a quarter (40 GB/s, 100 steps/s). Their median is
        // 0.5, where the median step rate over the median bandwidth would say 150 ÷ 400 = 0.375.
        double[] steps = [200, 150, 100], bandwidths = [40e9, 30e9, 40e9];
        Assert.Equal(0.5, BandwidthProbe.FractionOfFloor(steps, bandwidths, 100_000_000), 12);
        // an even count takes the upper middle one, as bench's other medians
        Assert.Equal(0.5, BandwidthProbe.FractionOfFloor([100, 200], [40e9, 40e9], 100_000_000), 12);
        Assert.Throws<ArgumentException>(() => BandwidthProbe.FractionOfFloor(steps, [40e9], 100_000_000));
    }
}
