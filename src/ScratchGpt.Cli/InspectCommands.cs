using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;
using ScratchGpt.Model;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>Looking inside the model: next-token predictions, attention tables and the module tree.</summary>
public static class InspectCommands
{
    public static Command Predict()
    {
        var c = new Command("predict",
            "For every position: the sequence so far and the model's top next-token prediction.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt); c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            using var model = Common.LoadModel(p);
            var tok = model.Tokenizer!;
            int[] ids = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            Common.CheckLength(model, ids.Length);
            var r = model.Forward(ids);
            var table = new Table().AddColumn("Sequence").AddColumn("Predicted next token").AddColumn("p");
            var rows = new JsonArray();
            var probs = new float[model.VocabSize];
            for (int t = 0; t < ids.Length; t++)
            {
                TokenMath.Softmax(r.Row(t), probs);
                int best = TokenMath.Argmax(probs);
                table.AddRow(Markup.Escape(StepsCommand.Visible(tok.Decode(ids[..(t + 1)]))),
                    Markup.Escape(StepsCommand.Visible(tok.Decode([best]))), $"{probs[best]:P2}");
                rows.Add(new JsonObject
                {
                    ["position"] = t, ["token_id"] = ids[t], ["sequence"] = tok.Decode(ids[..(t + 1)]),
                    ["predicted_id"] = best, ["predicted_token"] = tok.Decode([best]),
                        ["prob"] = Math.Round(probs[best], 6),
                });
            }
            if (p.GetValue(Common.Json))
                Console.WriteLine(new JsonObject { ["positions"] = rows }.ToJsonString(StepsCommand.JsonOut));
            else AnsiConsole.Write(table);
            return 0;
        });
        return c;
    }

    static readonly Option<string> Layer = new("--layer")
    {
        Description = "layer index or 'all'",
        DefaultValueFactory = _ => "0",
    };
    static readonly Option<string> Head = new("--head")
    {
        Description = "head index or 'all'",
        DefaultValueFactory = _ => "0",
    };
    static readonly Option<int> Round = new("--round") { Description = "decimals shown", DefaultValueFactory = _ => 3 };
    static readonly Option<string?> Csv = new("--csv")
    {
        Description = "also write the matrix (or the summary) as CSV",
    };
    static readonly Option<string?> Html = new("--html")
    {
        Description = "write the interactive viewer (model view, head view, logit lens) to this self-contained " +
            "HTML file",
    };

    public static Command Attention()
    {
        var c = new Command("attention",
            "The attention matrix of one layer and head, labelled with the tokens; --layer all --head all summarises " +
            "every head.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt);
        c.Options.Add(Layer);
        c.Options.Add(Head);
        c.Options.Add(Round);
        c.Options.Add(Csv);
        c.Options.Add(Html);
        c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            string prompt = p.GetValue(Common.Prompt)!;
            if (prompt.Length == 0)
                throw new ArgumentException("--prompt: the prompt is empty; attention needs at least one token");
            using var model = Common.LoadModel(p);
            var cfg = model.Config;
            int[] ids = model.Tokenizer!.Encode(prompt);
            Common.CheckLength(model, ids.Length);
            string layerArg = p.GetValue(Layer)!, headArg = p.GetValue(Head)!;
            int? layer = ParseIndex("--layer", layerArg, cfg.NLayer);
            int? head = ParseIndex("--head", headArg, cfg.NHead);
            int decimals = p.GetValue(Round);
            if (decimals is < 0 or > 8) throw new ArgumentException($"--round must be in 0..8, got {decimals}");
            var r = model.Forward(ids, new ForwardOptions { Attentions = true, AllLogits = false });
            var labels = model.Tokenizer.ConvertIdsToTokens(ids);
            int T = ids.Length;
            if (p.GetValue(Html) is string html)
            {
                var lens = Inspection.LogitLens.Run(model, ids);
                var lensTokens = lens.TopIds.Select(l =>
                    l.Select(t => StepsCommand.Visible(model.Tokenizer.Decode([t[0]]))).ToArray()).ToArray();
                AtomicFile.WriteAllText(html,
                    Inspection.AttentionViewer.Render(prompt, labels, r.Attentions!, cfg.NHead, lens, lensTokens));
                Console.Error.WriteLine($"wrote {html}: {cfg.NLayer} layers × {cfg.NHead} heads, {T} tokens");
                return 0;
            }

            bool json = p.GetValue(Common.Json);
            if (layer is int l && head is int h)
            {
                var m = AttentionMatrix(r.Attentions![l], h, T);
                if (json)
                {
                    var weights = new JsonArray(Enumerable.Range(0, T).Select(i => (JsonNode)new JsonArray(
                        Enumerable.Range(0, T).Select(j => (JsonNode)Math.Round(m[i, j], decimals)).ToArray()))
                        .ToArray());
                    Console.WriteLine(new JsonObject
                    {
                        ["tokens"] = new JsonArray(labels.Select(x => (JsonNode)x!).ToArray()), ["layer"] = l,
                        ["head"] = h, ["weights"] = weights,
                    }.ToJsonString(StepsCommand.JsonOut));
                }
                var table = new Table().AddColumn("");
                foreach (var lab in labels) table.AddColumn(Markup.Escape(lab));
                for (int i = 0; i < T; i++)
                    table.AddRow(
                        new[] { Markup.Escape(labels[i]) }.Concat(Enumerable.Range(0, T)
                        .Select(j => m[i, j].ToString("F" + decimals, CultureInfo.InvariantCulture))).ToArray());
                if (!json)
                {
                    AnsiConsole.MarkupLine($"[bold]layer {l}, head {h}[/] (row = query token, column = key token)");
                    AnsiConsole.Write(table);
                }
                if (p.GetValue(Csv) is string csv)
                {
                    var sb = new StringBuilder("token," + string.Join(",", labels.Select(Q)) + "\n");
                    for (int i = 0; i < T; i++)
                        sb.Append(Q(labels[i]) + ","
                            + string.Join(",",
                            Enumerable.Range(0, T).Select(j => m[i, j].ToString("R", CultureInfo.InvariantCulture)))
                            + "\n");
                    AtomicFile.WriteAllText(csv, sb.ToString());
                }
                return 0;
            }

            // Summary: per layer × head, the mean entropy of the attention rows and the mean max weight.
            var summary = new Table().AddColumn("layer").AddColumn("head").AddColumn("mean entropy (nats)")
                .AddColumn("mean max weight").AddColumn("attends most to");
            var csvOut = new StringBuilder("layer,head,mean_entropy,mean_max\n");
            var heads = new JsonArray();
            for (int li = 0; li < cfg.NLayer; li++)
            {
                if (layer is int only && only != li) continue;
                for (int hi = 0; hi < cfg.NHead; hi++)
                {
                    if (head is int oh && oh != hi) continue;
                    var m = AttentionMatrix(r.Attentions![li], hi, T);
                    double ent = 0, max = 0;
                    var colSum = new double[T];
                    for (int i = 0; i < T; i++)
                    {
                        double rowMax = 0;
                        for (int j = 0; j <= i; j++)
                        {
                            double w = m[i, j];
                            if (w > 0) ent -= w * Math.Log(w);
                            rowMax = Math.Max(rowMax, w);
                            colSum[j] += w;
                        }
                        max += rowMax;
                    }
                    int top = Array.IndexOf(colSum, colSum.Max());
                    summary.AddRow(li.ToString(), hi.ToString(), (ent / T).ToString("F" + decimals),
                        (max / T).ToString("F" + decimals), Markup.Escape(labels[top]));
                    csvOut.Append(CultureInfo.InvariantCulture, $"{li},{hi},{ent / T:R},{max / T:R}\n");
                    heads.Add(new JsonObject
                    {
                        ["layer"] = li, ["head"] = hi, ["mean_entropy"] = Math.Round(ent / T, 6),
                        ["mean_max_weight"] = Math.Round(max / T, 6),
                        ["attends_most_to"] = labels[top],
                    });
                }
            }
            if (json)
                Console.WriteLine(
                    new JsonObject { ["tokens"] = new JsonArray(labels.Select(x => (JsonNode)x!).ToArray()),
                    ["heads"] = heads }
                    .ToJsonString(StepsCommand.JsonOut));
            else AnsiConsole.Write(summary);
            if (p.GetValue(Csv) is string path) AtomicFile.WriteAllText(path, csvOut.ToString());
            return 0;
        });
        return c;
    }

    private static string Q(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";

    private static int? ParseIndex(string option, string value, int count)
    {
        if (value == "all") return null;
        if (!int.TryParse(value, out int i) || i < 0 || i >= count)
            throw new ArgumentException($"{option} {value} is out of range: valid values are 0..{count - 1} or 'all'");
        return i;
    }

    /// <summary>Head h of one layer's attentions [heads, T, T] as a T×T matrix.</summary>
    public static float[,] AttentionMatrix(float[] layer, int h, int T)
    {
        var m = new float[T, T];
        for (int i = 0; i < T; i++) for (int j = 0; j < T; j++) m[i, j] = layer[(h * T + i) * T + j];
        return m;
    }

    public static Command Summary()
    {
        var c = new Command("summary", "The module tree with shapes and parameter counts, total size and the device.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            using var model = Common.LoadModel(p);
            var cfg = model.Config;
            long total = model.ParameterCount;
            double bytesPer = model.Backend.BytesPerWeight(model.Precision);   // as held
            var shapes = Loading.Gpt2Layout.For(cfg).All()   // the checkpoint's names and shapes (Conv1D as [in, out])
                .Select(t => (t.Name, Shape: t.CheckpointShape.Select(d => (long)d).ToArray())).ToList();
            if (p.GetValue(Common.Json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["model"] = Common.ModelDir(p),
                    ["parameters"] = new JsonArray(shapes.Select(x => (JsonNode)new JsonObject
                    {
                        ["name"] = x.Name, ["shape"] = new JsonArray(x.Shape.Select(d => (JsonNode)d).ToArray()),
                    }).ToArray()),
                    ["total_parameters"] = total, ["checkpoint_dtype"] = model.CheckpointDType,
                    ["precision"] = model.Precision.ToString(),
                    ["device"] = model.Backend.Kind, ["device_name"] = model.Backend.DeviceName,
                }.ToJsonString(StepsCommand.JsonOut));
                return 0;
            }
            // Every text here goes through Markup.Escape: shapes such as [50257, 256] and folder names are not markup.
            var byName = shapes.ToDictionary(x => x.Name, x => x.Shape);
            static string E(string s) => Markup.Escape(s);
            var tree = new Tree(E($"GPT2LMHeadModel ({Common.ModelDir(p)})"));
            long Count(long[] s) => s.Aggregate(1L, (a, b) => a * b);
            string Shape(long[] s) => "[" + string.Join(", ", s) + "]";
            var transformer = tree.AddNode("transformer");
            foreach (var n in new[] { "wte", "wpe" })
                transformer.AddNode(
                    E($"{n}  {Shape(byName[n + ".weight"])}  {Count(byName[n + ".weight"]):N0} params"));
            var blocks = transformer.AddNode(E($"h  ({cfg.NLayer} × Gpt2Block)"));
            for (int l = 0; l < cfg.NLayer; l++)
            {
                var names = byName.Keys.Where(k => k.StartsWith($"h.{l}.")).ToList();
                var node = blocks.AddNode(E($"h.{l}  {names.Sum(n => Count(byName[n])):N0} params"));
                foreach (var module in new[] { "ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj" })
                {
                    var w = byName[$"h.{l}.{module}.weight"];
                    var b = byName[$"h.{l}.{module}.bias"];
                    node.AddNode(E($"{module}  weight {Shape(w)}  bias {Shape(b)}  {Count(w) + Count(b):N0}"));
                }
            }
            transformer.AddNode(E($"ln_f  weight {Shape(byName["ln_f.weight"])}  bias {Shape(byName["ln_f.bias"])}"));
            tree.AddNode(E($"lm_head  [{cfg.VocabSize}, {cfg.NEmbd}]  (tied to wte: no extra parameters)"));
            AnsiConsole.Write(tree);
            Console.WriteLine($"total parameters: {total:N0}");
            Console.WriteLine($"checkpoint dtype: {model.CheckpointDType}; in memory: {model.Precision} matrices " +
                $"(~{total * bytesPer / 1e6:F1} MB)");
            Console.WriteLine($"device: {model.Backend.Kind} — {model.Backend.DeviceName}");
            return 0;
        });
        return c;
    }
}
