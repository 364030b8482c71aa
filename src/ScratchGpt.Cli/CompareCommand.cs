using System.CommandLine;
using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>
/// scratchgpt compare: the notebooks' side-by-side of decoding strategies on one prompt — greedy, beam,
/// beam + no-repeat-n-gram, temperature 2.0 and 0.5, top-k, top-p — each with the log-probability of
/// its generated tokens.
/// </summary>
public static class CompareCommand
{
    static readonly Option<int> MaxNewTokens = new("--max-new-tokens") { DefaultValueFactory = _ => 40 };
    static readonly Option<int> Seed = new("--seed") { DefaultValueFactory = _ => 42 };
    static readonly Option<bool> Markdown = new("--markdown")
    {
        Description = "print a Markdown table (as in the README)",
    };

    /// <summary>The rows: a label (the generate options that reproduce it) and the settings.</summary>
    public static IEnumerable<(string Options, GenerationConfig Config)> Strategies(GenerationConfig baseline,
        int seed) =>
    [
        ("(greedy)", baseline),
        ("--num-beams 5", baseline with { NumBeams = 5 }),
        ("--num-beams 5 --no-repeat-ngram-size 2", baseline with { NumBeams = 5, NoRepeatNgramSize = 2 }),
        ($"--do-sample --temperature 2.0 --top-k 0 --seed {seed}",
        baseline with { DoSample = true, Temperature = 2.0f, TopK = 0, Seed = seed }),
        ($"--do-sample --temperature 0.5 --top-k 0 --seed {seed}",
        baseline with { DoSample = true, Temperature = 0.5f, TopK = 0, Seed = seed }),
        ($"--do-sample --top-k 50 --seed {seed}", baseline with { DoSample = true, TopK = 50, Seed = seed }),
        ($"--do-sample --top-k 0 --top-p 0.90 --seed {seed}",
        baseline with { DoSample = true, TopK = 0, TopP = 0.9f, Seed = seed }),
    ];

    public static Command Create()
    {
        var c = new Command("compare",
            "The notebooks' comparison: greedy, beam, beam + no-repeat, temperature 2.0 / 0.5, top-k and top-p on " +
            "one prompt, each with its log-probability.");
        Common.AddModelOptions(c);
        foreach (var o in new Option[] { Common.Prompt, MaxNewTokens, Seed, Markdown, Common.Json }) c.Options.Add(o);
        Common.Action(c, p =>
        {
            using var model = Common.LoadModel(p);
            int[] prompt = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            int eos = model.GenerationDefaults?.EosTokenId ?? model.Config.EosTokenId;
            var baseline = new GenerationConfig
            {
                MaxNewTokens = p.GetValue(MaxNewTokens),
                EosTokenId = eos,
                PadTokenId = eos,
            };
            baseline.Validate();
            var tok = model.Tokenizer!;
            var rows = new List<(string Options, string Text, double LogProb)>();
            foreach (var (options, config) in Strategies(baseline, p.GetValue(Seed)))
            {
                var s = new Generator(model).Generate(prompt, config).Sequences[0];
                var lp = GenerateCommand.Score(model, s, prompt.Length);
                rows.Add((options, tok.Decode(s.NewIds), lp.SumLogprobAllGeneratedTokens));
            }
            if (p.GetValue(Common.Json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["prompt_ids"] = new JsonArray(prompt.Select(i => (JsonNode)i).ToArray()),
                    ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
                    {
                        ["options"] = r.Options, ["new_text"] = r.Text, ["sum_logprob"] = r.LogProb,
                    }).ToArray()),
                }.ToJsonString(StepsCommand.JsonOut));
                return 0;
            }
            if (p.GetValue(Markdown))
            {
                Console.WriteLine("| options | new text | log-prob |");
                Console.WriteLine("| --- | --- | ---: |");
                foreach (var r in rows)
                    Console.WriteLine($"| `{r.Options}` | " +
                        $"`{r.Text.Replace("\n", "\\n").Replace("|", "\\|").Replace("`", "'")}` | {r.LogProb:F2} |");
                return 0;
            }
            var table = new Table().AddColumns("options", "new text", "log-prob");
            foreach (var r in rows)
                table.AddRow(Markup.Escape(r.Options), Markup.Escape(r.Text), r.LogProb.ToString("F2"));
            AnsiConsole.Write(table);
            return 0;
        });
        return c;
    }
}
