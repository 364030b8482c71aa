using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using ScratchGpt.Inspection;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt probe: one template filled with several people, the model's next tokens side by side.</summary>
public static class ProbeCommand
{
    static readonly Option<string> Template = new("--template")
    {
        Description = "the prompt with {} where each --fill goes",
        Required = true,
    };
    static readonly Option<string[]> Fills = new("--fill")
    {
        Description = "a text for {} (give it several times)",
        Required = true,
        AllowMultipleArgumentsPerToken = false,
    };
    static readonly Option<int> TopK = new("--top-k")
    {
        Description = "next tokens shown per fill",
        DefaultValueFactory = _ => 5,
    };
    static readonly Option<string[]> Targets = new("--targets")
    {
        Description = "continuations whose probability to show (e.g. \" doctor\" \" nurse\")",
        AllowMultipleArgumentsPerToken = true,
        DefaultValueFactory = _ => [],
    };
    static readonly Option<bool> Generate = new("--generate")
    {
        Description = "also generate continuations, as the notebook's pipeline call",
    };
    static readonly Option<int> NumReturn = new("--num-return-sequences")
    {
        Description = "with --generate",
        DefaultValueFactory = _ => 5,
    };
    static readonly Option<int> NumBeams = new("--num-beams")
    {
        Description = "with --generate",
        DefaultValueFactory = _ => 5,
    };
    static readonly Option<bool> Greedy = new("--no-sample")
    {
        Description = "with --generate: beam search without sampling (the default samples, as the notebook)",
    };
    static readonly Option<float> Temperature = new("--temperature")
    {
        Description = "with --generate",
        DefaultValueFactory = _ => 0.3f,
    };
    static readonly Option<int> MaxNew = new("--max-new-tokens")
    {
        Description = "with --generate",
        DefaultValueFactory = _ => 3,
    };
    static readonly Option<int?> Seed = new("--seed")
    {
        Description = "with --generate: seed for reproducible sampling",
    };
    static readonly Option<string?> Csv = new("--csv")
    {
        Description = "also write fill,rank,id,token,prob rows as CSV",
    };

    public static Command Create()
    {
        var c = new Command("probe",
            "Fill one template with several texts and compare the model's next tokens (the notebooks' bias probe).");
        Common.AddModelOptions(c);
        foreach (var o in new Option[]
        {
            Template, Fills, TopK, Targets, Generate, NumReturn, NumBeams, Greedy, Temperature, MaxNew, Seed, Csv,
            Common.Json,
        })
            c.Options.Add(o);
        // Ctrl-C ends the run between fills (exit 130, nothing on stdout).
        Common.Action(c, (p, ct) => Task.FromResult(Run(p, ct)));
        return c;
    }

    private static int Run(ParseResult p, CancellationToken ct)
    {
        int topK = p.GetValue(TopK);
        if (topK < 1) throw new ArgumentException($"--top-k must be ≥ 1, got {topK}");
        string template = p.GetValue(Template)!;
        string[] fills = p.GetValue(Fills)!;
        var prompts = fills.Select(f => PromptProbe.Fill(template, f)).ToArray();
        using var model = Common.LoadModel(p);
        var tok = model.Tokenizer!;
        var ids = prompts.Select(pr => Common.EncodePrompt(model, pr)).ToArray();
        var targets = p.GetValue(Targets)!.Select(t => (t, tok.Encode(t))).ToList();
        foreach (var (t, tids) in targets)
            if (tids.Length == 0) throw new ArgumentException("--targets: an empty target");
        GenerationConfig? gen = null;
        if (p.GetValue(Generate))
        {
            gen = new GenerationConfig
            {
                NumReturnSequences = p.GetValue(NumReturn), NumBeams = p.GetValue(NumBeams),
                DoSample = !p.GetValue(Greedy),
                Temperature = p.GetValue(Temperature), MaxNewTokens = p.GetValue(MaxNew), Seed = p.GetValue(Seed),
                EosTokenId = tok.EndOfTextId >= 0 ? tok.EndOfTextId : null,
                PadTokenId = tok.EndOfTextId >= 0 ? tok.EndOfTextId : null,
            };
            foreach (var i in ids) new Generator(model).Check(i, gen);
        }
        foreach (var i in ids)
            Common.CheckLength(model, i.Length + targets.Select(t => t.Item2.Length).DefaultIfEmpty(0).Max());
        var rows = fills.Select((f, i) =>
        {
            ct.ThrowIfCancellationRequested();
            return PromptProbe.Probe(model, f, prompts[i], ids[i], Math.Min(topK, model.VocabSize), targets, gen);
        }).ToList();

        if (p.GetValue(Csv) is string csv)
        {
            var sb = new StringBuilder("fill,rank,id,token,prob\n");
            foreach (var r in rows)
                for (int k = 0; k < r.Top.Length; k++)
                {
                    string token = StepsCommand.Q(tok.Decode([r.Top[k].Id]));
                    sb.Append(CultureInfo.InvariantCulture,
                        $"{StepsCommand.Q(r.Fill)},{k + 1},{r.Top[k].Id},{token},{r.Top[k].Prob:R}\n");
                }
            AtomicFile.WriteAllText(csv, sb.ToString());
        }
        if (p.GetValue(Common.Json))
        {
            Console.WriteLine(new JsonObject
            {
                ["template"] = template,
                ["rows"] = new JsonArray(rows.Select(r => (JsonNode)new JsonObject
                {
                    ["fill"] = r.Fill, ["prompt"] = r.Prompt,
                    ["top"] = new JsonArray(r.Top.Select(t => (JsonNode)new JsonObject
                    {
                        ["id"] = t.Id, ["token"] = tok.Decode([t.Id]), ["prob"] = Math.Round(t.Prob, 6),
                    }).ToArray()),
                    ["targets"] = new JsonObject(
                    r.Targets.Select(t => KeyValuePair.Create(t.Target, (JsonNode?)Math.Round(t.Prob, 8)))),
                    ["generated"] = new JsonArray(r.Generated.Select(g => (JsonNode)tok.Decode(g)).ToArray()),
                }).ToArray()),
            }.ToJsonString(StepsCommand.JsonOut));
            return 0;
        }
        var table = new Table().AddColumn("rank");
        foreach (var r in rows) table.AddColumn(Markup.Escape(r.Fill));
        for (int k = 0; k < rows[0].Top.Length; k++)
            table.AddRow([(k + 1).ToString(CultureInfo.InvariantCulture), .. rows.Select(r =>
                Markup.Escape($"{StepsCommand.Visible(tok.Decode([r.Top[k].Id]))} ({100 * r.Top[k].Prob:F2}%)"))]);
        foreach (var (t, _) in targets)
            table.AddRow([Markup.Escape($"p({StepsCommand.Visible(t)})"), .. rows.Select(r =>
                (100 * r.Targets.First(x => x.Target == t).Prob).ToString("F4", CultureInfo.InvariantCulture) + "%")]);
        AnsiConsole.Write(table);
        if (gen is not null)
            foreach (var r in rows)
            {
                Console.WriteLine($"{r.Prompt}");
                foreach (var g in r.Generated) Console.WriteLine($"  …{StepsCommand.Visible(tok.Decode(g))}");
            }
        return 0;
    }
}
