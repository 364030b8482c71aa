using ScratchGpt.Tokenization;
using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt steps: the notebooks' first table — N greedy steps with the top-K next tokens and their
/// probabilities.</summary>
public static class StepsCommand
{
    static readonly Option<int> Steps = new("--steps") { Description = "greedy steps", DefaultValueFactory = _ => 8 };
    static readonly Option<int> Choices = new("--choices")
    {
        Description = "top tokens per step",
        DefaultValueFactory = _ => 5,
    };
    static readonly Option<string?> Csv = new("--csv") { Description = "also write the table as CSV to this file" };

    public static Command Create()
    {
        var c = new Command("steps", "Show N greedy steps: input text and the top-K next tokens with probabilities.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt);
        c.Options.Add(Steps);
        c.Options.Add(Choices);
        c.Options.Add(Csv);
        c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            int steps = p.GetValue(Steps), choices = p.GetValue(Choices);
            if (steps <= 0) throw new ArgumentException($"--steps must be positive, got {steps}");
            if (choices <= 0) throw new ArgumentException($"--choices must be positive, got {choices}");
            using var model = Common.LoadModel(p);
            int[] prompt = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            var config = new GenerationConfig
            {
                MaxNewTokens = steps,
                EosTokenId = model.Config.EosTokenId,
                PadTokenId = model.Config.EosTokenId,
            };
            var result = new Generator(model) { TraceChoices = choices }.Generate(prompt, config);
            if (p.GetValue(Csv) is string csv) AtomicFile.WriteAllText(csv, ToCsv(model.Tokenizer!, result.Trace));
            if (p.GetValue(Common.Json))
                Console.WriteLine(TraceJson(model.Tokenizer!, result.Trace).ToJsonString(JsonOut));
            else PrintTable(model.Tokenizer!, result.Trace);
            return 0;
        });
        return c;
    }

    internal static readonly JsonSerializerOptions JsonOut = new()
    {
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static JsonObject TraceJson(Gpt2Tokenizer tok, IReadOnlyList<StepTrace> trace) => new()
    {
        ["steps"] = new JsonArray(trace.Select(s => (JsonNode)new JsonObject
        {
            ["input_text"] = tok.Decode(s.InputIds),
            ["chosen"] = s.ChosenId < 0 ? null
                : new JsonObject { ["id"] = s.ChosenId, ["token"] = tok.Decode([s.ChosenId]) },
            ["choices"] = new JsonArray(s.Choices.Select(ch => (JsonNode)new JsonObject
            {
                ["id"] = ch.Id, ["token"] = tok.Decode([ch.Id]), ["prob"] = Math.Round(ch.Prob, 6),
            }).ToArray()),
        }).ToArray()),
    };

    public static string ToCsv(Gpt2Tokenizer tok, IReadOnlyList<StepTrace> trace)
    {
        var sb = new StringBuilder("step,input_text,rank,id,token,prob\n");
        for (int i = 0; i < trace.Count; i++)
            for (int k = 0; k < trace[i].Choices.Length; k++)
            {
                var (id, prob) = trace[i].Choices[k];
                sb.Append(CultureInfo.InvariantCulture,
                    $"{i},{Q(tok.Decode(trace[i].InputIds))},{k + 1},{id},{Q(tok.Decode([id]))},{prob:R}\n");
            }
        return sb.ToString();
    }

    public static void PrintTable(Gpt2Tokenizer tok, IReadOnlyList<StepTrace> trace)
    {
        int k = trace.Count == 0 ? 0 : trace.Max(s => s.Choices.Length);
        // The token actually taken gets its own column: with sampling or epsilon-greedy it is often not in the top K.
        bool chosen = trace.Any(s => s.ChosenId >= 0);
        var table = new Table().AddColumn("Input");
        for (int i = 1; i <= k; i++) table.AddColumn($"Choice {i}");
        if (chosen) table.AddColumn("Chosen");
        foreach (var s in trace)
        {
            var cells = new List<string> { Markup.Escape(Visible(tok.Decode(s.InputIds))) };
            cells.AddRange(
                s.Choices.Select(ch => Markup.Escape($"{Visible(tok.Decode([ch.Id]))} ({100 * ch.Prob:F2}%)")));
            while (cells.Count <= k) cells.Add("");
            if (chosen) cells.Add(s.ChosenId < 0 ? "" : Markup.Escape(Visible(tok.Decode([s.ChosenId]))));
            table.AddRow(cells.ToArray());
        }
        AnsiConsole.Write(table);
    }

    /// <summary>Newlines and tabs shown as \n and \t so a table row stays one line.</summary>
    /// <summary>A CSV field in double quotes (quotes inside doubled).</summary>
    public static string Q(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";

    public static string Visible(string s) => s.Replace("\n", "\\n").Replace("\t", "\\t");
}
