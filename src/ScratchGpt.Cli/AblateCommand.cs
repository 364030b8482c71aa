using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScratchGpt.Inspection;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt ablate: for every layer × head, how much log p(target) at the last position changes when the
/// head's output is removed.</summary>
public static class AblateCommand
{
    static readonly Option<string> Target = new("--target")
    {
        Description = "the next token to explain, as text (one token, e.g. \" Paris\")",
        Required = true,
    };
    static readonly Option<bool> Mean = new("--mean")
    {
        Description = "replace the head's output by its mean over the prompt instead of zero",
    };
    static readonly Option<string?> Csv = new("--csv")
    {
        Description = "also write layer,head,delta_logprob rows as CSV",
    };

    public static Command Create()
    {
        var c = new Command("ablate",
            "Zero (or mean-) ablate each attention head in turn: the change in log p(--target) after the prompt.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt);
        c.Options.Add(Target);
        c.Options.Add(Mean);
        c.Options.Add(Csv);
        c.Options.Add(Common.Json);
        // Ctrl-C ends the run between passes (exit 130, nothing on stdout): n_layer × n_head passes take a while.
        Common.Action(c, (p, ct) => Task.FromResult(Run(p, ct)));
        return c;
    }

    private static int Run(ParseResult p, CancellationToken ct)
    {
        using var model = Common.LoadModel(p);
        var tok = model.Tokenizer!;
        int[] ids = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
        Common.CheckLength(model, ids.Length);
        string targetText = p.GetValue(Target)!;
        int[] target = tok.Encode(targetText);
        if (target.Length != 1)
            throw new ArgumentException($"--target '{targetText}' is {target.Length} tokens " +
                $"({string.Join(" ", tok.ConvertIdsToTokens(target))}); give one token");
        var r = HeadAblation.Run(model, ids, target[0], p.GetValue(Mean), ct);
        int L = r.DeltaLogProb.Length, H = L == 0 ? 0 : r.DeltaLogProb[0].Length;
        if (p.GetValue(Csv) is string csv)
        {
            var sb = new StringBuilder("layer,head,delta_logprob\n");
            for (int l = 0; l < L; l++)
                for (int h = 0; h < H; h++)
                    sb.Append(CultureInfo.InvariantCulture, $"{l},{h},{r.DeltaLogProb[l][h]:R}\n");
            AtomicFile.WriteAllText(csv, sb.ToString());
        }
        if (p.GetValue(Common.Json))
        {
            Console.WriteLine(new JsonObject
            {
                ["target_id"] = target[0], ["target"] = targetText, ["ablation"] = p.GetValue(Mean) ? "mean" : "zero",
                ["baseline_logprob"] = r.BaselineLogProb,
                ["delta_logprob"] = new JsonArray(
                    r.DeltaLogProb.Select(row => (JsonNode)new JsonArray(row.Select(d => (JsonNode)d).ToArray()))
                    .ToArray()),
            }.ToJsonString(StepsCommand.JsonOut));
            return 0;
        }
        // A heat map: red where removing the head lowers log p(target), blue where it raises it.
        double scale = Math.Max(1e-9, r.DeltaLogProb.SelectMany(x => x).Select(Math.Abs).DefaultIfEmpty(0).Max());
        var table = new Table().AddColumn("layer");
        for (int h = 0; h < H; h++) table.AddColumn($"head {h}");
        for (int l = 0; l < L; l++)
            table.AddRow([l.ToString(CultureInfo.InvariantCulture), .. r.DeltaLogProb[l].Select(d => Cell(d, scale))]);
        Console.WriteLine($"log p({StepsCommand.Visible(targetText)}) = {r.BaselineLogProb:F4}; change when " +
            "each head is " + (p.GetValue(Mean) ? "mean-ablated:" : "zeroed:"));
        AnsiConsole.Write(table);
        return 0;
    }

    private static string Cell(double d, double scale)
    {
        string text = d.ToString("+0.000;-0.000;0.000", CultureInfo.InvariantCulture);
        int shade = (int)Math.Round(Math.Min(1, Math.Abs(d) / scale) * 4);
        if (shade == 0) return text;
        string colour = d < 0 ? new[] { "", "pink1", "indianred1", "red3", "red" }[shade]
            : new[] { "", "lightskyblue1", "skyblue1", "deepskyblue3", "blue" }[shade];
        return $"[{colour}]{text}[/]";
    }
}
