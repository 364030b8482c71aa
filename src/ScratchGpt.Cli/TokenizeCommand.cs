using ScratchGpt.Tokenization;
using System.CommandLine;
using System.Text.Json.Nodes;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt tokenize: text → ids and byte-level tokens (no model weights are loaded).</summary>
public static class TokenizeCommand
{
    static readonly Option<string> Text = new("--text") { Description = "the text to tokenize", Required = true };

    public static Command Create()
    {
        var c = new Command("tokenize", "Show the GPT-2 token ids and tokens of a text.");
        c.Options.Add(Common.Model); c.Options.Add(Common.Tokenizer); c.Options.Add(Common.Verbose);
        c.Options.Add(Text); c.Options.Add(Common.Json);
        Common.AddHubOptions(c);
        Common.Action(c, p =>
        {
            string? modelDir = Common.ResolveModel(p, p.GetValue(Common.Model));
            if (modelDir is not null && !Directory.Exists(modelDir))
                throw new ModelLoadException($"{modelDir}: model folder not found");
            var tok = Gpt2Tokenizer.ForModel(modelDir ?? ModelFolder.DefaultModelDirectory,
                p.GetValue(Common.Tokenizer));
            int[] ids = tok.Encode(p.GetValue(Text)!);
            string[] tokens = tok.ConvertIdsToTokens(ids);
            if (p.GetValue(Common.Json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["ids"] = new JsonArray(ids.Select(i => (JsonNode)i).ToArray()),
                    ["tokens"] = new JsonArray(tokens.Select(t => (JsonNode)t).ToArray()),
                }.ToJsonString(StepsCommand.JsonOut));
                return 0;
            }
            var table = new Table().AddColumn("#").AddColumn("id").AddColumn("token");
            for (int i = 0; i < ids.Length; i++)
                table.AddRow(i.ToString(), ids[i].ToString(), Markup.Escape(tokens[i]));
            AnsiConsole.Write(table);
            Console.WriteLine($"{ids.Length} tokens");
            return 0;
        });
        return c;
    }
}
