using System.Text.Json.Nodes;
using ScratchGpt.Decoding;

namespace ScratchGpt.Tests;

/// <summary>generate() cases: greedy, max_length, repetition penalty, no-repeat n-gram, EOS, min_new_tokens,
/// beams.</summary>
public class GenerationTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixtures.Json("generation.json")["cases"]!.AsArray())
            data.Add(c!["name"]!.GetValue<string>());
        return data;
    }

    internal static JsonNode Find(string name) =>
        Fixtures.Json("generation.json")["cases"]!.AsArray().First(c => c!["name"]!.GetValue<string>() == name)!;

    /// <summary>generate_kwargs → GenerationConfig, with the model's EOS as transformers takes it.</summary>
    internal static GenerationConfig ConfigFrom(JsonNode kwargs, int eos = 50256)
    {
        var k = kwargs.AsObject();
        int? Int(string n) => k[n]?.GetValue<int>();
        var es = k["early_stopping"] switch
        {
            JsonValue v when v.TryGetValue(out bool b) => b ? EarlyStopping.True : EarlyStopping.False,
            JsonValue v when v.TryGetValue(out string? s) && s == "never" => EarlyStopping.Never,
            _ => EarlyStopping.False,
        };
        return new GenerationConfig
        {
            DoSample = k["do_sample"]?.GetValue<bool>() ?? false,
            NumBeams = Int("num_beams") ?? 1,
            MaxNewTokens = Int("max_new_tokens"),
            MaxLength = Int("max_length"),
            MinNewTokens = Int("min_new_tokens"),
            RepetitionPenalty = k["repetition_penalty"]?.GetValue<float>() ?? 1f,
            NoRepeatNgramSize = Int("no_repeat_ngram_size") ?? 0,
            NumReturnSequences = Int("num_return_sequences") ?? 1,
            LengthPenalty = k["length_penalty"]?.GetValue<double>() ?? 1.0,
            EarlyStopping = es,
            Temperature = k["temperature"]?.GetValue<float>() ?? 1f,
            TopK = Int("top_k") ?? 50,
            TopP = k["top_p"]?.GetValue<float>() ?? 1f,
            PadTokenId = Int("pad_token_id"),
            EosTokenId = eos,
        };
    }

    [Theory, MemberData(nameof(Cases))]
    public void Generate_matches_transformers(string name) => Check(name, "cpu");

    internal static void Check(string name, string device)
    {
        var c = Find(name);
        var model = Fixtures.Load(c["model"]!.GetValue<string>(), device);
        int[] prompt = Fixtures.Ints(c["input_ids"]);
        Assert.Equal(prompt, model.Tokenizer!.Encode(c["prompt"]!.GetValue<string>()));
        var config = ConfigFrom(c["generate_kwargs"]!);

        var result = new Generator(model).Generate(prompt, config);

        var expected = c["sequences"]!.AsArray().Select(Fixtures.Ints).ToArray();
        Assert.Equal(expected.Length, result.Sequences.Count);
        for (int r = 0; r < expected.Length; r++) Assert.Equal(expected[r], result.Sequences[r].Ids);
        Assert.Equal(c["num_steps"]!.GetValue<int>(), result.NumSteps);
        var texts = c["texts"]!.AsArray().Select(t => t!.GetValue<string>()).ToArray();
        for (int r = 0; r < texts.Length; r++)
            Assert.Equal(texts[r], model.Tokenizer.Decode(result.Sequences[r].NewIds));

        if (c["sequences_scores"] is JsonArray scores)
            for (int r = 0; r < scores.Count; r++)
                Assert.Equal(scores[r]!.GetValue<double>(), result.Sequences[r].SequenceScore!.Value, 1e-4);

        var logprobs = c["sequence_logprob"]!.AsArray();
        for (int r = 0; r < logprobs.Count; r++)
        {
            var lp = SequenceScorer.Score(ids => model.Forward(ids).Logits, model.VocabSize, result.Sequences[r].Ids,
                prompt.Length);
            Assert.Equal(logprobs[r]!["sequence_logprob"]!.GetValue<double>(), lp.SequenceLogprob, 1e-3);
            Assert.Equal(logprobs[r]!["sum_logprob_all_generated_tokens"]!.GetValue<double>(),
                lp.SumLogprobAllGeneratedTokens, 1e-3);
            var per = logprobs[r]!["per_token_logprob"]!.AsArray().Select(x => x!.GetValue<float>()).ToArray();
            // The README's tolerance. It holds because log_softmax sums its 50,257 exps in float32 in PyTorch's lane
            // order (TokenMath.SumLikeTorch); an exact sum would miss it by up to 8e-5.
            Assert.True(Fixtures.MaxAbsDiff(per, lp.PerTokenLogprob) <= 1e-5f,
                $"per_token_logprob diff {Fixtures.MaxAbsDiff(per, lp.PerTokenLogprob)}");
        }
    }

    [Fact]
    public void Step_table_matches_transformers()
    {
        foreach (var table in Fixtures.Json("step_tables.json")["cases"]!.AsArray())
        {
            var model = Fixtures.Load(table!["model"]!.GetValue<string>());
            var steps = table["steps"]!.AsArray();
            int[] prompt = model.Tokenizer!.Encode(table["prompt"]!.GetValue<string>());
            var gen = new Generator(model) { TraceChoices = 5 };
            var result = gen.Generate(prompt,
                new GenerationConfig { MaxNewTokens = steps.Count, EosTokenId = 50256, PadTokenId = 50256 });
            Assert.Equal(steps.Count, result.Trace.Count);
            for (int s = 0; s < steps.Count; s++)
            {
                var want = steps[s]!;
                var got = result.Trace[s];
                Assert.Equal(Fixtures.Ints(want["input_ids"]), got.InputIds);
                Assert.Equal(want["input_text"]!.GetValue<string>(), model.Tokenizer.Decode(got.InputIds));
                Assert.Equal(want["chosen_id"]!.GetValue<int>(), got.ChosenId);
                var top5 = want["top5"]!.AsArray();
                for (int k = 0; k < 5; k++)
                {
                    Assert.Equal(top5[k]!["id"]!.GetValue<int>(), got.Choices[k].Id);
                    Assert.Equal(top5[k]!["token"]!.GetValue<string>(), model.Tokenizer.Decode([got.Choices[k].Id]));
                    Assert.Equal(top5[k]!["raw_token"]!.GetValue<string>(),
                        model.Tokenizer.IdToToken(got.Choices[k].Id));
                    Assert.Equal(top5[k]!["prob"]!.GetValue<float>(), got.Choices[k].Prob, 1e-5f);
                }
            }
            Assert.Equal(table["final_text"]!.GetValue<string>(), model.Tokenizer.Decode(result.Sequences[0].Ids));
        }
    }

    [Fact]
    public async Task Streaming_yields_the_greedy_tokens_and_stops_on_cancel()
    {
        var model = Fixtures.Load("tiny-gpt2");
        int[] prompt = model.Tokenizer!.Encode("Transformers are the");
        var config = new GenerationConfig { MaxNewTokens = 12, EosTokenId = 50256 };
        var expected = new Generator(model).Generate(prompt, config).Sequences[0].NewIds;
        var streamed = new List<int>();
        await foreach (var t in new Generator(model).StreamAsync(prompt, config)) streamed.Add(t);
        Assert.Equal(expected, streamed);

        using var cts = new CancellationTokenSource();
        var got = new List<int>();
        // Cancelling ends the stream after the step in flight; the tokens so far stand (no exception).
        await foreach (var t in new Generator(model).StreamAsync(prompt, config with { MaxNewTokens = 100 }, cts.Token))
        {
            got.Add(t);
            if (got.Count == 3) cts.Cancel();
        }
        Assert.Equal(3, got.Count);   // stopped within one step of the cancel
        Assert.Equal(expected[..3], got);

        // Generate returns what it has and says it stopped: greedy, lock-step rows, beams.
        using var early = new CancellationTokenSource();
        early.Cancel();
        foreach (var c in new[] { config, config with { NumReturnSequences = 2, DoSample = true, Seed = 1 },
            config with { NumBeams = 2 } })
        {
            var r = new Generator(model).Generate(prompt, c with { MaxNewTokens = 50 }, early.Token);
            Assert.True(r.Stopped);
            Assert.All(r.Sequences, s => Assert.True(s.NewIds.Length <= 1));
        }
        Assert.False(new Generator(model).Generate(prompt, config).Stopped);
    }

    [Fact]
    public void Seeded_sampling_is_reproducible_and_seeds_differ()
    {
        var model = Fixtures.Load("tiny-gpt2");
        int[] prompt = model.Tokenizer!.Encode("Transformers are the");
        var config = new GenerationConfig
        {
            DoSample = true,
            MaxNewTokens = 15,
            Seed = 42,
            EosTokenId = 50256,
            NumReturnSequences = 3,
        };
        var a = new Generator(model).Generate(prompt, config);
        var b = new Generator(model).Generate(prompt, config);
        Assert.Equal(a.Sequences.Select(s => s.Ids), b.Sequences.Select(s => s.Ids));
        Assert.Equal(3, a.Sequences.Count);
        var c = new Generator(model).Generate(prompt, config with { Seed = 7 });
        Assert.NotEqual(a.Sequences.Select(s => string.Join(",", s.Ids)),
            c.Sequences.Select(s => string.Join(",", s.Ids)));
    }

    [Fact]
    public void Epsilon_one_is_greedy_and_beam_sampling_runs()
    {
        var model = Fixtures.Load("tiny-gpt2");
        int[] prompt = model.Tokenizer!.Encode("Transformers are the");
        var greedy = new Generator(model)
            .Generate(prompt, new GenerationConfig { MaxNewTokens = 10, EosTokenId = 50256 });
        var eps = new Generator(model)
            .Generate(prompt, new GenerationConfig { MaxNewTokens = 10, EosTokenId = 50256, Epsilon = 1.0, Seed = 3 });
        Assert.Equal(greedy.Sequences[0].Ids, eps.Sequences[0].Ids);

        var beamSample = new Generator(model).Generate(prompt, new GenerationConfig
        { MaxNewTokens = 10, EosTokenId = 50256, PadTokenId = 50256, NumBeams = 3, DoSample = true, Seed = 1,
            NumReturnSequences = 2 });
        Assert.Equal(2, beamSample.Sequences.Count);
        Assert.True(beamSample.Sequences[0].SequenceScore >= beamSample.Sequences[1].SequenceScore);

        var uniform = new Generator(model)
            .Generate(prompt,
            new GenerationConfig { MaxNewTokens = 10, EosTokenId = 50256, Unweighted = true, TopK = 5, Seed = 1 });
        Assert.Equal(14, uniform.Sequences[0].Ids.Length);
    }

    [Theory]
    [InlineData("top_p", 1.5f)]
    [InlineData("top_p", 0f)]
    [InlineData("temperature", 0f)]
    [InlineData("num_return_sequences", 3f)]
    [InlineData("epsilon", 1.5f)]
    [InlineData("max_new_tokens", 0f)]
    public void Invalid_parameters_name_themselves(string parameter, float value)
    {
        var config = parameter switch
        {
            "top_p" => new GenerationConfig { DoSample = true, TopP = value },
            "temperature" => new GenerationConfig { DoSample = true, Temperature = value },
            "num_return_sequences" => new GenerationConfig { NumBeams = 2, NumReturnSequences = (int)value },
            "epsilon" => new GenerationConfig { Epsilon = value },
            _ => new GenerationConfig { MaxNewTokens = (int)value },
        };
        var e = Assert.Throws<GenerationConfigException>(config.Validate);
        Assert.Contains(parameter, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void Prompt_past_n_positions_is_a_clear_error()
    {
        var model = Fixtures.Load("tiny-gpt2");
        var e = Assert.Throws<GenerationConfigException>(() =>
            new Generator(model)
                .Generate(Enumerable.Repeat(262, 250).ToArray(), new GenerationConfig { MaxNewTokens = 10 }));
        Assert.Contains("n_positions (256)", e.Message);
    }
}
