using System.Text.Json.Nodes;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Model;
using Xunit.Abstractions;

namespace ScratchGpt.Tests;

/// <summary>The float16 KV cache (--kv-cache f16): the values it stores, the logits it gives against the reference
/// backend's float16 cache and against float32, what it does to the fixtures' generations, and the CLI.</summary>
[Collection("cli-process")]
public class KvCacheTests(ITestOutputHelper output)
{
    private static Gpt2Model Load(string device, KvCachePrecision kvCache) => Gpt2Model.Load(
        Fixtures.Model("tiny-gpt2"),
        new ModelLoadOptions { Device = device, TokenizerDirectory = Fixtures.TokenizerDir, KvCache = kvCache });

    private const string Prompt =
        "ROMEO:\nBut soft, what light through yonder window breaks? It is the east, and Juliet is the sun.";

    [Fact]
    public void A_float16_cache_stores_each_value_rounded_to_a_half_with_subnormals_as_zero()
    {
        float[] values = [1f / 3, -2.5f, 65504f, 1e-3f, 6.2e-5f, 6e-5f, -1e-7f, 0f, 70000f];
        Assert.Equal((float)(Half)(1f / 3), Float16CacheValues.Round(1f / 3));
        Assert.NotEqual(1f / 3, Float16CacheValues.Round(1f / 3));
        Assert.Equal(-2.5f, Float16CacheValues.Round(-2.5f));
        Assert.Equal(65504f, Float16CacheValues.Round(65504f));
        Assert.Equal((float)(Half)1e-3f, Float16CacheValues.Round(1e-3f));
        Assert.Equal((float)(Half)6.2e-5f, Float16CacheValues.Round(6.2e-5f));   // just above 2^-14: normal
        Assert.Equal(0f, Float16CacheValues.Round(6e-5f));                       // just below: subnormal → 0
        Assert.Equal(0f, Float16CacheValues.Round(-1e-7f));
        // the vectorized form stores the same halves, and refuses what float16 cannot hold
        var halves = new Half[8];
        Float16CacheValues.Store(values.AsSpan(0, 8), halves);
        Assert.Equal(values[..8].Select(Float16CacheValues.Round), halves.Select(h => (float)h));
        var e = Assert.Throws<BackendException>(() => Float16CacheValues.Store(values, new Half[9]));
        Assert.Contains("70000", e.Message);
        Assert.Contains("--kv-cache f32", e.Message);
        Assert.Throws<BackendException>(() => Float16CacheValues.Round(float.NaN));

        // 16 at a time: the same halves as one by one, and a value out of range found inside a vector
        var rng = new Random(7);
        float[] many = Enumerable.Range(0, 100).Select(i => (float)(rng.NextDouble() - 0.5) * MathF.Pow(10, i % 9 - 6))
            .ToArray();
        var stored = new Half[many.Length];
        Float16CacheValues.Store(many, stored);
        Assert.Equal(many.Select(Float16CacheValues.Round), stored.Select(h => (float)h));
        Assert.Contains(stored, h => h == (Half)0f);   // some were subnormal
        many[37] = -1e6f;
        e = Assert.Throws<BackendException>(() => Float16CacheValues.Store(many, stored));
        Assert.Contains("-1000000", e.Message);
    }

    [Fact]
    public void The_cpu_backends_float16_cache_gives_the_reference_backends_logits()
    {
        // Both round the same values into their caches; only the order of the sums differs.
        using var cpu = Load("cpu", KvCachePrecision.Float16);
        using var reference = Load("reference", KvCachePrecision.Float16);
        using var exact = Load("cpu", KvCachePrecision.Float32);
        int[] ids = cpu.Tokenizer!.Encode(Prompt);
        float[] a = cpu.Forward(ids).Logits, b = reference.Forward(ids).Logits, c = exact.Forward(ids).Logits;
        Assert.True(Fixtures.MaxAbsDiff(a, b) <= 1e-4f, $"cpu vs reference: {Fixtures.MaxAbsDiff(a, b)}");
        float cost = Fixtures.MaxAbsDiff(a, c);
        output.WriteLine($"float16 cache vs float32 cache, max logit difference over {ids.Length} positions: {cost}");
        Assert.True(cost > 0f && cost < 0.01f, $"float16 vs float32 cache: {cost}");
    }

    [Fact]
    public void Cached_decoding_with_a_float16_cache_gives_its_full_pass_and_a_copy_continues_like_the_original()
    {
        // The prompt's rows read the cache four queries at a time, a decode step four keys at a time: each score is
        // the same dot of the same halves. The prompt's keys and values come from the prefill product and a step's
        // from the matrix-vector one, ~1e-7 apart; where that straddles a half's rounding boundary the cached value
        // moves by a half's step, so the logits agree to 1e-4 here (float32 cache: 1e-5), not to the bit.
        using var model = Load("cpu", KvCachePrecision.Float16);
        int[] ids = model.Tokenizer!.Encode(Prompt);
        var full = model.Forward(ids);
        using var session = model.CreateSession(40);
        var logits = new float[model.VocabSize];
        session.Append(ids.AsSpan(0, 3), logits);
        for (int t = 3; t < ids.Length - 1; t++)
        {
            session.Append(ids.AsSpan(t, 1), logits);
            Assert.True(Fixtures.MaxAbsDiff(full.Row(t), logits) <= 1e-4f, $"position {t}");
        }
        using var copy = model.CreateSession(64);   // another capacity: each head's block moves
        copy.CopyFrom(session);
        var fromCopy = new float[model.VocabSize];
        session.Append(ids.AsSpan(ids.Length - 1), logits);
        copy.Append(ids.AsSpan(ids.Length - 1), fromCopy);
        Assert.Equal(logits, fromCopy);
        using var f32 = Load("cpu", KvCachePrecision.Float32).CreateSession();
        Assert.Throws<ArgumentException>(() => f32.CopyFrom(session));
    }

    [Fact]
    public void The_fixtures_deterministic_generations_survive_a_float16_cache()
    {
        using var model = Load("cpu", KvCachePrecision.Float16);
        int cases = 0, identical = 0;
        foreach (var c in Fixtures.Json("generation.json")["cases"]!.AsArray())
        {
            var kwargs = c!["generate_kwargs"]!;
            if (kwargs["do_sample"]?.GetValue<bool>() == true || c["model"]!.GetValue<string>() != "tiny-gpt2")
                continue;
            int[] want = Fixtures.Ints(c["sequences"]![0]);
            int[] got = new Generator(model).Generate(Fixtures.Ints(c["input_ids"]), GenerationTests.ConfigFrom(kwargs))
                .Sequences[0].Ids;
            cases++;
            if (got.SequenceEqual(want)) identical++;
            else output.WriteLine($"{c["name"]}: differs");
        }
        output.WriteLine($"{identical} of {cases} deterministic fixture generations identical with a float16 cache");
        Assert.True(cases >= 20);
        Assert.True(identical >= cases - 1, $"only {identical} of {cases} generations survive a float16 cache");
    }

    [Fact]
    public void A_float16_cache_moves_the_held_out_perplexity_by_under_a_tenth_of_a_percent()
    {
        using var f32 = Load("cpu", KvCachePrecision.Float32);
        using var f16 = Load("cpu", KvCachePrecision.Float16);
        double a = QuantizationTests.HeldOutPerplexity(f32), b = QuantizationTests.HeldOutPerplexity(f16);
        output.WriteLine($"held-out perplexity (4096 tokens): float32 cache {a:F4}, float16 cache {b:F4} " +
            $"({100 * (b / a - 1):+0.0000;-0.0000}%)");
        Assert.True(Math.Abs(b / a - 1) < 0.001, $"float32 cache {a}, float16 cache {b}");
        Assert.NotEqual(a, b);   // the cache really held halves
    }

    [Theory]
    [InlineData("reference", true)]
    [InlineData("cpu", true)]
    [InlineData("ilgpu-cpu", false)]
    public void A_backend_says_which_caches_it_holds_and_allocates_only_those(string device, bool float16)
    {
        using var be = BackendFactory.Create(device);
        Assert.True(be.HoldsCache(KvCachePrecision.Float32));
        Assert.Equal(float16, be.HoldsCache(KvCachePrecision.Float16));
        using (var cache = be.AllocateCache(64, KvCachePrecision.Float32)) Assert.Equal(64, cache.Length);
        if (float16)
        {
            using var cache = be.AllocateCache(64, KvCachePrecision.Float16);
            Assert.Equal(64, cache.Length);
        }
        else Assert.Throws<BackendException>(() => be.AllocateCache(64, KvCachePrecision.Float16));
    }

    [Fact]
    public void Generate_and_bench_take_kv_cache_f16_and_refuse_what_they_cannot_do()
    {
        var c = GenerationTests.Find("greedy_p1_20");
        var (code, stdout, stderr) = CliProcess.Run("generate", "--model", Fixtures.Model("tiny-gpt2"), "--device",
            "cpu", "--prompt", "Transformers are the", "--max-new-tokens", "20", "--kv-cache", "f16", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal(Fixtures.Ints(c["new_tokens"]![0]),
            Fixtures.Ints(JsonNode.Parse(stdout)!["prompts"]![0]!["sequences"]![0]!["new_ids"]));

        (code, stdout, stderr) = CliProcess.Run("bench", "--model", Fixtures.Model("tiny-gpt2"), "--device", "cpu",
            "--prompt-tokens", "8", "--new-tokens", "4", "--runs", "1", "--kv-cache", "f16", "--json");
        Assert.True(code == 0, stderr);
        Assert.Equal("Float16", JsonNode.Parse(stdout)!["kv_cache"]!.GetValue<string>());

        foreach (var (args, expected) in new[]
        {
            (new[] { "--device", "cpu", "--kv-cache", "f8" }, "error: --kv-cache must be f32 or f16, got 'f8'"),
            (["--device", "ilgpu-cpu", "--kv-cache", "f16"],
                "error: ilgpu-cpu: the float16 KV cache runs on the cpu and reference devices; use --kv-cache f32 " +
                "here"),
        })
        {
            (code, stdout, stderr) = CliProcess.Run(["generate", "--model", Fixtures.Model("tiny-gpt2"), "--prompt",
                "Hi", .. args]);
            Assert.NotEqual(0, code);
            Assert.Equal("", stdout);
            Assert.Equal(expected, stderr.Split('\n').Single(l => l.StartsWith("error:")));
            Assert.DoesNotContain("   at ", stderr);
        }
    }
}
