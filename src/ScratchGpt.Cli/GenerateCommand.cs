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
    static readonly Option<int?> MaxNewTokens = new("--max-new-tokens") { Description = "tokens to generate after the prompt" };
    static readonly Option<int?> MaxLength = new("--max-length") { Description = "total length including the prompt (default 20 when neither is given)" };
    static readonly Option<int?> MinNewTokens = new("--min-new-tokens") { Description = "forbid EOS until this many tokens were generated" };
    static readonly Option<int?> MinLength = new("--min-length") { Description = "forbid EOS while the whole sequence is shorter" };
    static readonly Option<bool> DoSample = new("--do-sample") { Description = "sample instead of taking the argmax" };
    static readonly Option<float?> Temperature = new("--temperature") { Description = "divide the logits by T (> 0) before sampling" };
    static readonly Option<int?> TopK = new("--top-k") { Description = "sample among the k likeliest tokens (default 50; 0 disables)" };
    static readonly Option<float?> TopP = new("--top-p") { Description = "sample among the likeliest tokens holding p of the mass, p in (0, 1]" };
    static readonly Option<int?> NumBeams = new("--num-beams") { Description = "beam search with this many beams" };
    static readonly Option<double?> LengthPenalty = new("--length-penalty") { Description = "beam score = sum log p / length^penalty" };
    static readonly Option<string?> EarlyStoppingOpt = new("--early-stopping") { Description = "true | false | never" };
    static readonly Option<int?> NoRepeat = new("--no-repeat-ngram-size") { Description = "forbid repeating any n-gram of this size" };
    static readonly Option<float?> RepetitionPenalty = new("--repetition-penalty") { Description = "penalise tokens already present (> 0; 1 disables)" };
    static readonly Option<int?> NumReturn = new("--num-return-sequences") { Description = "rows to return (≤ num_beams for beam search)" };
    static readonly Option<double?> Epsilon = new("--epsilon") { Description = "epsilon-greedy: argmax with probability ε, else sample" };
    static readonly Option<bool> Unweighted = new("--unweighted") { Description = "teaching aid: uniform choice among the tokens the warpers keep" };
    static readonly Option<int?> Seed = new("--seed") { Description = "seed for reproducible sampling" };
    static readonly Option<string[]> Prompts = new("--prompt") { Description = "the input text; give --prompt several times for a batch (left-padded, as transformers does)", DefaultValueFactory = _ => [""] };
    static readonly Option<string> Truncate = new("--truncate") { Description = "none | left: when prompt + new tokens exceed n_positions, drop the oldest prompt tokens instead of failing", DefaultValueFactory = _ => "none" };
    static readonly Option<int?> Trace = new("--trace") { Description = "print the step table with this many top choices per step" };

    public static Command Create()
    {
        var c = new Command("generate", "Generate text from a prompt with any decoding strategy.");
        Common.AddModelOptions(c);
        c.Options.Add(Prompts);
        foreach (var o in new Option[] { MaxNewTokens, MaxLength, MinNewTokens, MinLength, DoSample, Temperature, TopK, TopP, NumBeams,
                     LengthPenalty, EarlyStoppingOpt, NoRepeat, RepetitionPenalty, NumReturn, Epsilon, Unweighted, Seed, Truncate, Trace, Common.Json })
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
            var v => throw new GenerationConfigException($"early_stopping (--early-stopping) must be true, false or never, got {v}"),
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
        if (mode is not ("none" or "left")) throw new ArgumentException($"--truncate must be 'none' or 'left', got '{mode}'");
        int over = config.EffectiveMaxLength(prompt.Length) - positions;
        if (mode == "none" || over <= 0) return prompt;
        if (config.MaxNewTokens is null) throw new ArgumentException($"--truncate left needs --max-new-tokens (max_length {config.MaxLength} is past n_positions {positions} whatever the prompt)");
        if (over >= prompt.Length) throw new ArgumentException($"--max-new-tokens {config.MaxNewTokens} alone reaches n_positions ({positions}); nothing of the prompt would remain");
        Console.Error.WriteLine($"note: --truncate left: dropped the first {over} of {prompt.Length} prompt tokens to fit n_positions ({positions})");
        return prompt[over..];
    }

    private static async Task<int> Run(ParseResult p, CancellationToken ct)
    {
        using var model = Common.LoadModel(p);
        var config = BuildConfig(p, model);
        config.Validate();
        string[] texts = p.GetValue(Prompts)!;
        if (texts.Length > 1) return await RunBatch(p, model, config, texts, ct);
        int[] prompt = Common.EncodePrompt(model, texts.Length == 0 ? "" : texts[0]);
        prompt = TruncateLeft(p.GetValue(Truncate)!, prompt, config, model.Config.NPositions);
        if (p.GetValue(Common.Verbose))
            foreach (var (name, value) in config.Describe(prompt.Length)) Console.Error.WriteLine($"  {name} = {value}");

        int traceChoices = p.GetValue(Trace) ?? 0;
        bool json = p.GetValue(Common.Json);
        bool stream = !json && traceChoices == 0 && config.NumBeams == 1 && config.NumReturnSequences == 1;
        var tok = model.Tokenizer!;
        if (stream)
        {
            // Print text as tokens arrive; decode the whole tail so multi-byte characters come out whole.
            Console.Write(tok.Decode(prompt));
            var generated = new List<int>();
            string shown = "";
            await foreach (int id in new Generator(model).StreamAsync(prompt, config, ct))
            {
                generated.Add(id);
                string text = tok.Decode(generated);
                if (!text.EndsWith('\uFFFD')) { Console.Write(text[shown.Length..]); shown = text; }
            }
            string final = tok.Decode(generated);
            if (final.Length > shown.Length) Console.Write(final[shown.Length..]);
            Console.WriteLine();
            return 0;
        }

        var result = await Task.Run(() => new Generator(model) { TraceChoices = traceChoices }.Generate(prompt, config, ct), ct);
        if (traceChoices > 0 && !json) StepsCommand.PrintTable(tok, result.Trace);
        if (json)
        {
            Console.WriteLine(ToJson(model, result).ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        for (int i = 0; i < result.Sequences.Count; i++)
        {
            var s = result.Sequences[i];
            var lp = Score(model, s, prompt.Length);
            if (result.Sequences.Count > 1) AnsiConsole.MarkupLine($"[grey]── sequence {i + 1} · log-prob {lp.SumLogprobAllGeneratedTokens:F2}" + (s.SequenceScore is double sc ? $" · beam score {sc:F4}" : "") + " ──[/]");
            Console.WriteLine(tok.Decode(s.Ids));
        }
        return 0;
    }

    /// <summary>Several prompts: one result per prompt, and the left-padded batch layout in --json.</summary>
    private static async Task<int> RunBatch(ParseResult p, Gpt2Model model, GenerationConfig config, string[] texts, CancellationToken ct)
    {
        if ((p.GetValue(Trace) ?? 0) > 0) throw new ArgumentException("--trace shows one sequence's steps; give a single --prompt");
        var prompts = texts.Select(t => TruncateLeft(p.GetValue(Truncate)!, Common.EncodePrompt(model, t), config, model.Config.NPositions)).ToList();
        var batch = await Task.Run(() => new Generator(model).GenerateBatch(prompts, config, ct), ct);
        var tok = model.Tokenizer!;
        if (p.GetValue(Common.Json))
        {
            var o = new JsonObject
            {
                ["batch"] = new JsonArray(batch.PerPrompt.Select(r => (JsonNode)ToJson(model, r)).ToArray()),
                ["padded_sequences"] = new JsonArray(batch.Sequences.Select(r => (JsonNode)new JsonArray(r.Select(i => (JsonNode)i).ToArray())).ToArray()),
                ["attention_mask"] = new JsonArray(batch.AttentionMask.Select(r => (JsonNode)new JsonArray(r.Select(i => (JsonNode)i).ToArray())).ToArray()),
                ["device"] = model.Backend.Kind,
            };
            Console.WriteLine(o.ToJsonString(new JsonSerializerOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }));
            return 0;
        }
        for (int b = 0; b < batch.PerPrompt.Count; b++)
            foreach (var s in batch.PerPrompt[b].Sequences)
            {
                AnsiConsole.MarkupLine($"[grey]── prompt {b + 1} · log-prob {Score(model, s, prompts[b].Length).SumLogprobAllGeneratedTokens:F2} ──[/]");
                Console.WriteLine(tok.Decode(s.Ids));
            }
        return 0;
    }

    internal static SequenceLogProb Score(Gpt2Model model, GeneratedSequence s, int promptLength) =>
        SequenceScorer.Score(ids => model.Forward(ids).Logits, model.VocabSize, s.Ids, promptLength);

    public static JsonObject ToJson(Gpt2Model model, GenerationResult result)
    {
        var tok = model.Tokenizer!;
        var rows = new JsonArray();
        foreach (var s in result.Sequences)
        {
            var lp = Score(model, s, result.PromptIds.Length);
            var row = new JsonObject
            {
                ["ids"] = new JsonArray(s.Ids.Select(i => (JsonNode)i).ToArray()),
                ["text"] = tok.Decode(s.NewIds),
                ["score"] = lp.SequenceLogprob,
                ["sum_logprob"] = lp.SumLogprobAllGeneratedTokens,
                ["per_token_logprob"] = new JsonArray(lp.PerTokenLogprob.Select(x => (JsonNode)x).ToArray()),
            };
            if (s.SequenceScore is double sc) row["sequences_score"] = sc;
            rows.Add(row);
        }
        var o = new JsonObject
        {
            ["prompt_ids"] = new JsonArray(result.PromptIds.Select(i => (JsonNode)i).ToArray()),
            ["sequences"] = rows,
            ["num_steps"] = result.NumSteps,
            ["device"] = model.Backend.Kind,
        };
        if (result.Trace.Count > 0) o["steps"] = StepsCommand.TraceJson(tok, result.Trace)["steps"]!.DeepClone();
        return o;
    }
}
