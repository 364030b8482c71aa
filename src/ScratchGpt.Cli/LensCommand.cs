using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScratchGpt.Inspection;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt lens: the logit lens, a layers × positions table of what the model would predict if it
/// stopped after each block.</summary>
public static class LensCommand
{
    static readonly Option<int> Top = new("--top")
    {
        Description = "tokens per cell (best first)",
        DefaultValueFactory = _ => 1,
    };
    static readonly Option<string?> Csv = new("--csv")
    {
        Description = "also write layer,position,rank,id,token,prob rows as CSV",
    };

    public static Command Create()
    {
        var c = new Command("lens",
            "The logit lens: ln_f and the LM head applied to the residual stream after the embeddings and after " +
            "each block.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt); c.Options.Add(Top); c.Options.Add(Csv); c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            int top = p.GetValue(Top);
            if (top < 1) throw new ArgumentException($"--top must be ≥ 1, got {top}");
            using var model = Common.LoadModel(p);
            var tok = model.Tokenizer!;
            int[] ids = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            Common.CheckLength(model, ids.Length);
            var r = LogitLens.Run(model, ids, Math.Min(top, model.VocabSize));
            string Layer(int l) => l == 0 ? "embed" : $"block {l - 1}";
            if (p.GetValue(Csv) is string csv)
            {
                var sb = new StringBuilder("layer,position,rank,id,token,prob\n");
                for (int l = 0; l < r.TopIds.Length; l++)
                    for (int t = 0; t < ids.Length; t++)
                        for (int k = 0; k < r.TopIds[l][t].Length; k++)
                        {
                            int id = r.TopIds[l][t][k];
                            string token = StepsCommand.Q(tok.Decode([id]));
                            sb.Append(CultureInfo.InvariantCulture,
                                $"{Layer(l)},{t},{k + 1},{id},{token},{r.TopProbs[l][t][k]:R}\n");
                        }
                AtomicFile.WriteAllText(csv, sb.ToString());
            }
            if (p.GetValue(Common.Json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["tokens"] = new JsonArray(tok.ConvertIdsToTokens(ids).Select(s => (JsonNode)s).ToArray()),
                    ["layers"] = new JsonArray(Enumerable.Range(0, r.TopIds.Length).Select(l => (JsonNode)new JsonObject
                    {
                        ["layer"] = Layer(l),
                        ["top_ids"] = Nested(r.TopIds[l], top, x => JsonValue.Create(x)),
                        ["top_probs"] = Nested(r.TopProbs[l], top, x => JsonValue.Create(Math.Round(x, 6))),
                    }).ToArray()),
                }.ToJsonString(StepsCommand.JsonOut));
                return 0;
            }
            var table = new Table().AddColumn("layer");
            for (int t = 0; t < ids.Length; t++)
                table.AddColumn(Markup.Escape(StepsCommand.Visible(tok.Decode([ids[t]]))));
            for (int l = 0; l < r.TopIds.Length; l++)
                table.AddRow([Layer(l), .. Enumerable.Range(0, ids.Length).Select(t => Markup.Escape(string.Join(" ",
                    r.TopIds[l][t].Select((id, k) => $"{StepsCommand.Visible(tok.Decode([id]))} " +
                    $"{100 * r.TopProbs[l][t][k]:F0}%"))))]);
            AnsiConsole.Write(table);
            return 0;
        });
        return c;
    }

    /// <summary>top == 1: one value per position; else a list per position.</summary>
    private static JsonArray Nested<T>(T[][] rows, int top, Func<T, JsonNode?> value) =>
        new(rows.Select(r => top == 1 ? value(r[0]) : new JsonArray(r.Select(value).ToArray())).ToArray());
}
