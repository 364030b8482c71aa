using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using ScratchGpt.Decoding.Processors;
using ScratchGpt.Loading;

namespace ScratchGpt.Tests;

/// <summary>Each logits processor and warper against transformers' outputs on six hostile score vectors.</summary>
public class ProcessorTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixtures.Json("logits_processors.json")["cases"]!.AsArray())
            data.Add(c!["name"]!.GetValue<string>());
        return data;
    }

    internal static ILogitsProcessor Build(JsonNode p)
    {
        var prm = p["params"]!;
        return p["class"]!.GetValue<string>() switch
        {
            "TemperatureLogitsWarper" => new TemperatureLogitsWarper(prm["temperature"]!.GetValue<float>()),
            "TopKLogitsWarper" =>
                new TopKLogitsWarper(prm["top_k"]!.GetValue<int>(), prm["min_tokens_to_keep"]?.GetValue<int>() ?? 1),
            "TopPLogitsWarper" =>
                new TopPLogitsWarper(prm["top_p"]!.GetValue<float>(), prm["min_tokens_to_keep"]?.GetValue<int>() ?? 1),
            "RepetitionPenaltyLogitsProcessor" =>
                new RepetitionPenaltyLogitsProcessor(prm["penalty"]!.GetValue<float>()),
            "NoRepeatNGramLogitsProcessor" => new NoRepeatNGramLogitsProcessor(prm["ngram_size"]!.GetValue<int>()),
            var other => throw new NotSupportedException(other),
        };
    }

    [Theory, MemberData(nameof(Cases))]
    public void Processor_matches_transformers(string name)
    {
        var root = Fixtures.Json("logits_processors.json");
        var c = root["cases"]!.AsArray().First(x => x!["name"]!.GetValue<string>() == name)!;
        using var tensors = SafetensorsFile.Open(Fixtures.Case(root["tensors_file"]!.GetValue<string>()));
        int V = root["vocab_size"]!.GetValue<int>(), rows = root["rows"]!.GetValue<int>();
        float[] input = tensors.ReadFloat32("input_scores");
        float[] expected = tensors.ReadFloat32(c["output_tensor"]!.GetValue<string>());
        long[] ids = tensors.ReadInt64("input_ids");
        int idLen = ids.Length / rows;
        var processors = c["processors"]!.AsArray().Select(p => Build(p!)).ToList();
        var kept = Fixtures.Ints(c["kept_counts"]);

        for (int r = 0; r < rows; r++)
        {
            var scores = input.AsSpan(r * V, V).ToArray();
            var rowIds = ids.Skip(r * idLen).Take(idLen).Select(x => (int)x).ToArray();
            foreach (var p in processors) p.Process(rowIds, scores);
            var want = expected.AsSpan(r * V, V);
            int finite = scores.Count(s => !float.IsNegativeInfinity(s));

            var cut = c["top_p_cut"]?.AsArray()[r];
            if (cut is not null && cut["underflow_sensitive"]!.GetValue<bool>()) continue;   // not comparable (README)
            if (cut is not null && cut["threshold_margin"] is JsonValue margin && margin.GetValue<double>() < 1e-5)
            {
                Assert.InRange(finite, kept[r] - 1, kept[r] + 1);   // the cut may move by one token
                continue;
            }
            Assert.Equal(kept[r], finite);
            bool orderSensitive = cut is not null && cut["order_sensitive"]!.GetValue<bool>();
            float boundary = orderSensitive ? BoundaryValue(input.AsSpan(r * V, V), want) : float.NaN;
            for (int i = 0; i < V; i++)
            {
                // which tied tokens survive is unspecified
                if (orderSensitive && input[r * V + i] == boundary) continue;
                Assert.Equal(float.IsNegativeInfinity(want[i]), float.IsNegativeInfinity(scores[i]));
                if (!float.IsNegativeInfinity(want[i]))
                    Assert.True(Math.Abs(want[i] - scores[i]) <= 1e-6f * Math.Max(1f, Math.Abs(want[i])),
                        $"row {r} token {i}: {scores[i]} vs {want[i]}");
            }
        }
    }

    /// <summary>The smallest kept input score: the tied value that straddles the top-p cut.</summary>
    private static float BoundaryValue(ReadOnlySpan<float> input, ReadOnlySpan<float> output)
    {
        float min = float.PositiveInfinity;
        for (int i = 0; i < input.Length; i++)
            if (!float.IsNegativeInfinity(output[i])) min = Math.Min(min, input[i]);
        return min;
    }

    [Fact]
    public void No_repeat_ngram_bans_what_the_fixture_lists()
    {
        var root = Fixtures.Json("logits_processors.json");
        foreach (var c in root["cases"]!.AsArray().Where(x => x!["banned_tokens"] is not null))
        {
            int n = c!["processors"]![0]!["params"]!["ngram_size"]!.GetValue<int>();
            var rowsIds = root["input_ids"]!.AsArray();
            var banned = c["banned_tokens"]!.AsArray();
            using var tensors = SafetensorsFile.Open(Fixtures.Case(root["tensors_file"]!.GetValue<string>()));
            float[] input = tensors.ReadFloat32("input_scores");
            int V = root["vocab_size"]!.GetValue<int>();
            for (int r = 0; r < rowsIds.Count; r++)
            {
                // The fixture lists the tokens whose score changed; tokens already at −∞ cannot change.
                var ours = new NoRepeatNGramLogitsProcessor(n).BannedTokens(Fixtures.Ints(rowsIds[r]))
                    .Where(t => !float.IsNegativeInfinity(input[r * V + t])).Distinct().Order();
                Assert.Equal(Fixtures.Ints(banned[r]).Order(), ours);
            }
        }
    }
}

/// <summary>The exact distribution generate(do_sample=True) draws from, and sampled frequencies against it.</summary>
public class SamplingTests
{
    public static TheoryData<string> Configs()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixtures.Json("sampling.json")["cases"]![0]!["configs"]!.AsArray())
            data.Add(c!["name"]!.GetValue<string>());
        return data;
    }

    private static (float[] Ours, float[] Expected, GenerationConfig Config) Distribution(string name)
    {
        var caseNode = Fixtures.Json("sampling.json")["cases"]![0]!;
        var c = caseNode["configs"]!.AsArray().First(x => x!["name"]!.GetValue<string>() == name)!;
        var model = Fixtures.Load(caseNode["model"]!.GetValue<string>());
        int[] prompt = Fixtures.Ints(caseNode["input_ids"]);
        using var tensors = SafetensorsFile.Open(Fixtures.Case(caseNode["tensors_file"]!.GetValue<string>()));
        var config = GenerationTests.ConfigFrom(c["generate_kwargs"]!);

        // The model's logits must be the fixture's, then processors → warpers → softmax.
        var logits = model.Forward(prompt, new Model.ForwardOptions { AllLogits = false }).Row(0).ToArray();
        Assert.True(Fixtures.MaxAbsDiff(tensors.ReadFloat32("logits"), logits) <= 1e-4f);
        var list = LogitsProcessorList.From(config, prompt.Length);
        Assert.Equal(c["hf_logits_warpers"]!.AsArray().Select(w => w!["class"]!.GetValue<string>()),
            list.Warpers.Select(w => w.GetType().Name));
        list.Apply(prompt, logits);
        var probs = new float[logits.Length];
        TokenMath.Softmax(logits, probs);
        return (probs, tensors.ReadFloat32(c["probs_tensor"]!.GetValue<string>()), config);
    }

    [Theory, MemberData(nameof(Configs))]
    public void Warped_distribution_matches_transformers(string name)
    {
        var (ours, expected, _) = Distribution(name);
        Assert.True(Fixtures.MaxAbsDiff(expected, ours) <= 1e-5f);
        Assert.Equal(expected.Count(p => p > 0), ours.Count(p => p > 0));
    }

    /// <summary>
    /// 20,000 seeded draws: the total-variation distance between the sampled frequencies and the fixture's
    /// distribution must be below 0.035 (the expected sampling noise for ≤ 50 tokens is about 0.02; a
    /// top-p that keeps 50 instead of 41 tokens, or temperature 0.7 instead of 1, moves it above 0.05).
    /// </summary>
    [Theory]
    [InlineData("k50_p0.9")]
    [InlineData("k50")]
    public void Sampled_frequencies_follow_the_distribution(string name)
    {
        var (ours, expected, config) = Distribution(name);
        var sampler = new TokenSampler(1234);
        var counts = new Dictionary<int, int>();
        const int draws = 20_000;
        for (int i = 0; i < draws; i++)
        {
            int t = sampler.Sample(ours);
            counts[t] = counts.GetValueOrDefault(t) + 1;
        }
        double tv = 0;
        for (int i = 0; i < expected.Length; i++)
            tv += Math.Abs(counts.GetValueOrDefault(i) / (double)draws - expected[i]);
        tv /= 2;
        Assert.True(tv < 0.035, $"total variation {tv:F4}");
        Assert.All(counts.Keys, t => Assert.True(expected[t] > 0, $"token {t} was drawn but has probability 0"));
        Assert.True(config.DoSample);
    }
}

public class StableArgsortTests
{
    /// <summary>The plain reference: a comparison sort, then equal keys put back in index order.</summary>
    private static int[] Reference(float[] scores)
    {
        var keys = (float[])scores.Clone();
        var order = Enumerable.Range(0, scores.Length).ToArray();
        Array.Sort(keys, order);
        for (int i = 0; i < keys.Length;)
        {
            int j = i + 1;
            while (j < keys.Length && keys[j].Equals(keys[i])) j++;
            Array.Sort(order, i, j - i);
            i = j;
        }
        return order;
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 37)]
    [InlineData(3, 50257)]
    public void Radix_argsort_equals_a_stable_comparison_sort(int seed, int n)
    {
        var rng = new Random(seed);
        // logits-like values, many exact ties, −∞ (top-k's leftovers), both zeros, negatives and huge magnitudes
        float[] pool = [float.NegativeInfinity, 0f, -0f, 1e-30f, -1e-30f, 3.5f, -3.5f, 1e30f, -1e30f];
        var scores = Enumerable.Range(0, n)
            .Select(_ => rng.Next(4) == 0 ? pool[rng.Next(pool.Length)]
            : (float)Math.Round(rng.NextDouble() * 40 - 20, 2)).ToArray();
        var order = new int[n];
        var sorter = new Decoding.StableArgsort();
        sorter.Sort(scores, order);
        Assert.Equal(Reference(scores), order);
        sorter.Sort(scores.Select(v => -v).ToArray(), order);   // reused buffers, another row
        Assert.Equal(Reference(scores.Select(v => -v).ToArray()), order);
    }
}
