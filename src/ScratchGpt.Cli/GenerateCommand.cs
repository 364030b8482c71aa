using ScratchGpt.Tokenization;
using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using ScratchGpt.Model;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt generate: every decoding strategy, streamed as text or printed as JSON.</summary>
public static class GenerateCommand
{
    static readonly Option<int?> MaxNewTokens = new("--max-new-tokens")
    {
        Description = "tokens to generate after the prompt",
    };
    static readonly Option<int?> MaxLength = new("--max-length")
    {
        Description = "total length including the prompt (default 20 when neither is given)",
    };
    static readonly Option<int?> MinNewTokens = new("--min-new-tokens")
    {
        Description = "forbid EOS until this many tokens were generated",
    };
    static readonly Option<int?> MinLength = new("--min-length")
    {
        Description = "forbid EOS while the whole sequence is shorter",
    };
    static readonly Option<bool> DoSample = new("--do-sample") { Description = "sample instead of taking the argmax" };
    static readonly Option<float?> Temperature = new("--temperature")
    {
        Description = "divide the logits by T (> 0) before sampling",
    };
    static readonly Option<int?> TopK = new("--top-k")
    {
        Description = "sample among the k likeliest tokens (default 50; 0 disables)",
    };
    static readonly Option<float?> TopP = new("--top-p")
    {
        Description = "sample among the likeliest tokens holding p of the mass, p in (0, 1]",
    };
    static readonly Option<int?> NumBeams = new("--num-beams") { Description = "beam search with this many beams" };
    static readonly Option<double?> LengthPenalty = new("--length-penalty")
    {
        Description = "beam score = sum log p / length^penalty",
    };
    static readonly Option<string?> EarlyStoppingOpt = new("--early-stopping") { Description = "true | false | never" };
    static readonly Option<int?> NoRepeat = new("--no-repeat-ngram-size")
    {
        Description = "forbid repeating any n-gram of this size",
    };
    static readonly Option<float?> RepetitionPenalty = new("--repetition-penalty")
    {
        Description = "penalise tokens already present (> 0; 1 disables)",
    };
    static readonly Option<int?> NumReturn = new("--num-return-sequences")
    {
        Description = "rows to return (≤ num_beams for beam search)",
    };
    static readonly Option<double?> Epsilon = new("--epsilon")
    {
        Description = "epsilon-greedy: argmax with probability ε, else sample",
    };
    static readonly Option<bool> Unweighted = new("--unweighted")
    {
        Description = "teaching aid: uniform choice among the tokens the warpers keep",
    };
    static readonly Option<int?> Seed = new("--seed") { Description = "seed for reproducible sampling" };
    static readonly Option<string[]> Prompts = new("--prompt")
    {
        Description = "the input text; give --prompt several times for a batch (left-padded, as transformers does)",
        DefaultValueFactory = _ => [""],
    };
    static readonly Option<string> Truncate = new("--truncate")
    {
        Description = "none | left: when prompt + new tokens exceed n_positions, drop the oldest prompt tokens " +
            "instead of failing",
        DefaultValueFactory = _ => "none",
    };
    static readonly Option<int?> Trace = new("--trace")
    {
        Description = "print the step table with this many top choices per step",
    };

    public static Command Create()
    {
        var c = new Command("generate", "Generate text from a prompt with any decoding strategy.");
        Common.AddModelOptions(c);
        c.Options.Add(Prompts);
        foreach (var o in new Option[]
        {
            MaxNewTokens, MaxLength, MinNewTokens, MinLength, DoSample, Temperature, TopK, TopP, NumBeams,
            LengthPenalty, EarlyStoppingOpt, NoRepeat, RepetitionPenalty, NumReturn, Epsilon, Unweighted, Seed,
            Truncate, Trace, Common.Json,
        })
            c.Options.Add(o);
        Common.Action(c, Run);
        return c;
    }

    /// <summary>The model's generation_config.json, then the command line on top.</summary>
    public static GenerationConfig BuildConfig(ParseResult p, Gpt2Model model)
    {
        var g = (model.GenerationDefaults ?? new GenerationConfig()) with { };
        var es = p.GetValue(EarlyStoppingOpt) switch
        {
            null => g.EarlyStopping,
            "true" or "True" => EarlyStopping.True,
            "false" or "False" => EarlyStopping.False,
            "never" => EarlyStopping.Never,
            var v => throw new GenerationConfigException("early_stopping (--early-stopping) must be true, false or " +
            $"never, got {v}"),
        };
        int eos = g.EosTokenId ?? model.Config.EosTokenId;
        return g with
        {
            MaxNewTokens = p.GetValue(MaxNewTokens) ?? (p.GetValue(MaxLength) is null ? g.MaxNewTokens : null),
            MaxLength = p.GetValue(MaxLength) ?? g.MaxLength,
            MinNewTokens = p.GetValue(MinNewTokens) ?? g.MinNewTokens,
            MinLength = p.GetValue(MinLength) ?? g.MinLength,
            DoSample = p.GetValue(DoSample) || g.DoSample,
            Temperature = p.GetValue(Temperature) ?? g.Temperature,
            TopK = p.GetValue(TopK) ?? g.TopK,
            TopP = p.GetValue(TopP) ?? g.TopP,
            NumBeams = p.GetValue(NumBeams) ?? g.NumBeams,
            LengthPenalty = p.GetValue(LengthPenalty) ?? g.LengthPenalty,
            EarlyStopping = es,
            NoRepeatNgramSize = p.GetValue(NoRepeat) ?? g.NoRepeatNgramSize,
            RepetitionPenalty = p.GetValue(RepetitionPenalty) ?? g.RepetitionPenalty,
            NumReturnSequences = p.GetValue(NumReturn) ?? g.NumReturnSequences,
            Epsilon = p.GetValue(Epsilon) ?? g.Epsilon,
            Unweighted = p.GetValue(Unweighted) || g.Unweighted,
            Seed = p.GetValue(Seed) ?? g.Seed,
            EosTokenId = eos,
            PadTokenId = g.PadTokenId ?? eos,
        };
    }

    /// <summary>--truncate left keeps the last tokens of the prompt so that prompt + new tokens fit in n_positions;
    /// the default refuses, so text is never dropped silently.</summary>
    private static int[] TruncateLeft(string mode, int[] prompt, GenerationConfig config, int positions)
    {
        if (mode is not ("none" or "left"))
            throw new ArgumentException($"--truncate must be 'none' or 'left', got '{mode}'");
        int over = config.EffectiveMaxLength(prompt.Length) - positions;
        if (mode == "none" || over <= 0) return prompt;
        if (config.MaxNewTokens is null)
            throw new ArgumentException($"--truncate left needs --max-new-tokens (max_length {config.MaxLength} is " +
                $"past n_positions {positions} whatever the prompt)");
        if (over >= prompt.Length)
            throw new ArgumentException($"--max-new-tokens {config.MaxNewTokens} alone reaches n_positions " +
                $"({positions}); nothing of the prompt would remain");
        Console.Error.WriteLine($"note: --truncate left: dropped the first {over} of {prompt.Length} prompt tokens " +
            $"to fit n_positions ({positions})");
        return prompt[over..];
    }

    private static async Task<int> Run(ParseResult p, CancellationToken ct)
    {
        // Everything is checked before the first byte of output: options, config, prompts and their lengths.
        using var model = Common.LoadModel(p);
        var config = BuildConfig(p, model);
        string[] texts = p.GetValue(Prompts)!;
        int traceChoices = p.GetValue(Trace) ?? 0;
        if (texts.Length > 1 && traceChoices > 0)
            throw new ArgumentException("--trace shows one sequence's steps; give a single --prompt");
        var prompts = (texts.Length == 0 ? [""] : texts)
            .Select(t =>
                TruncateLeft(p.GetValue(Truncate)!, Common.EncodePrompt(model, t), config, model.Config.NPositions))
            .ToList();
        // One generation call for every output: streamed text prints each token as it is chosen (a character split
        // over tokens, or text the clean-up may still change, waits in the detokenizer); JSON, beams, several rows or
        // prompts and the step table print the result. A cancelled run returns the tokens so far.
        bool json = p.GetValue(Common.Json);
        bool stream = !json && traceChoices == 0 && prompts.Count == 1 && config.NumBeams == 1
            && config.NumReturnSequences == 1;
        var tok = model.Tokenizer!;
        var text = new StreamingDetokenizer(tok);
        var generator = new Generator(model)
        {
            TraceChoices = traceChoices,
            OnToken = stream ? id => Console.Write(text.Push(id)) : null,
        };
        foreach (var prompt in prompts) generator.Check(prompt, config);      // the config and each prompt, once
        WarnAboutFlagsWithoutSampling(p, config);
        if (p.GetValue(Common.Verbose))
            foreach (var (name, value) in config.Describe(prompts[0].Length))
                Console.Error.WriteLine($"  {name} = {value}");

        if (stream) Console.Write(tok.Decode(prompts[0]));
        var batch = await Task.Run(() => generator.GenerateBatch(prompts, config, ct));
        if (stream)
        {
            Console.WriteLine(text.Flush());
            return batch.Stopped ? Stopped($"after {batch.PerPrompt[0].Sequences[0].NewIds.Length} new tokens") : 0;
        }
        if (json) Console.WriteLine(ToJson(model, batch).ToJsonString(StepsCommand.JsonOut));
        else
        {
            if (traceChoices > 0) StepsCommand.PrintTable(tok, batch.PerPrompt[0].Trace);
            bool labelled = batch.PerPrompt.Count > 1 || batch.PerPrompt[0].Sequences.Count > 1;
            for (int b = 0; b < batch.PerPrompt.Count; b++)
                for (int i = 0; i < batch.PerPrompt[b].Sequences.Count; i++)
                {
                    var s = batch.PerPrompt[b].Sequences[i];
                    if (labelled)
                    {
                        string label = batch.PerPrompt.Count > 1 ? $"prompt {b + 1}" : $"sequence {i + 1}";
                        double lp = Score(model, s, prompts[b].Length).SumLogprobAllGeneratedTokens;
                        AnsiConsole.MarkupLine($"[grey]── {label} · log-prob {lp:F2}"
                            + (s.SequenceScore is double sc ? $" · beam score {sc:F4}" : "") + " ──[/]");
                    }
                    Console.WriteLine(tok.Decode(s.Ids));
                }
        }
        return batch.Stopped ? Stopped("printed what was generated so far") : 0;
    }

    /// <summary>The one line a cancelled run leaves on stderr, and its exit code (128 + SIGINT).</summary>
    private static int Stopped(string what)
    {
        Console.Error.WriteLine($"stopped (interrupted): {what}");
        return 130;
    }

    /// <summary>transformers warns when sampling flags come without do_sample; so does this.</summary>
    private static void WarnAboutFlagsWithoutSampling(ParseResult p, GenerationConfig config)
    {
        if (config.DoSample) return;
        var given = new (Option Option, bool Given)[]
        {
            (Temperature, p.GetValue(Temperature) is not null), (TopK, p.GetValue(TopK) is not null),
            (TopP, p.GetValue(TopP) is not null),
        }.Where(x => x.Given).Select(x => x.Option.Name).ToList();
        if (given.Count > 0)
            Console.Error.WriteLine($"warning: {string.Join(", ", given)} {(given.Count == 1 ? "has" : "have")} no " +
                "effect without --do-sample " +
                $"({(config.NumBeams > 1 ? "beam search" : "greedy decoding")} runs); add --do-sample to sample");
    }

    internal static SequenceLogProb Score(Gpt2Model model, GeneratedSequence s, int promptLength) =>
        SequenceScorer.Score(ids => model.Forward(ids).Logits, model.VocabSize, s.Ids, promptLength);

    private static JsonArray Ints(IEnumerable<int> ids) => new(ids.Select(i => (JsonNode)i).ToArray());

    /// <summary>The one JSON shape of generate, for one prompt or several (README, "JSON output").</summary>
    public static JsonObject ToJson(Gpt2Model model, BatchGenerationResult batch)
    {
        var tok = model.Tokenizer!;
        var prompts = new JsonArray();
        foreach (var result in batch.PerPrompt)
        {
            var rows = new JsonArray();
            foreach (var s in result.Sequences)
            {
                var lp = Score(model, s, result.PromptIds.Length);
                var row = new JsonObject
                {
                    ["ids"] = Ints(s.Ids),
                    ["text"] = tok.Decode(s.Ids),
                    ["new_ids"] = Ints(s.NewIds),
                    ["new_text"] = tok.Decode(s.NewIds),
                    ["score"] = lp.SequenceLogprob,
                    ["sum_logprob"] = lp.SumLogprobAllGeneratedTokens,
                    ["per_token_logprob"] = new JsonArray(lp.PerTokenLogprob.Select(x => (JsonNode)x).ToArray()),
                };
                if (s.SequenceScore is double sc) row["sequences_score"] = sc;
                rows.Add(row);
            }
            var o = new JsonObject
            {
                ["prompt"] = tok.Decode(result.PromptIds),
                ["prompt_ids"] = Ints(result.PromptIds),
                ["sequences"] = rows,
                ["num_steps"] = result.NumSteps,
            };
            if (result.Trace.Count > 0) o["steps"] = StepsCommand.TraceJson(tok, result.Trace)["steps"]!.DeepClone();
            prompts.Add(o);
        }
        return new JsonObject
        {
            ["prompts"] = prompts,
            ["padded_sequences"] = new JsonArray(batch.Sequences.Select(r => (JsonNode)Ints(r)).ToArray()),
            ["attention_mask"] = new JsonArray(batch.AttentionMask.Select(r => (JsonNode)Ints(r)).ToArray()),
            ["device"] = model.Backend.Kind,
            ["stopped"] = batch.Stopped,
        };
    }
}
