using System.CommandLine;
using System.Text.Json.Nodes;
using ScratchGpt.Decoding;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt score: the log-probability of a continuation given a prompt, token by token.</summary>
public static class ScoreCommand
{
    static readonly Option<string> Continuation = new("--continuation")
    {
        Description = "the text after the prompt to score",
        Required = true,
    };

    public static Command Create()
    {
        var c = new Command("score", "Log-probability of --continuation after --prompt (per token and summed).");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt); c.Options.Add(Continuation); c.Options.Add(Common.Json);
        Common.Action(c, p =>
        {
            using var model = Common.LoadModel(p);
            var tok = model.Tokenizer!;
            int[] prompt = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            int[] cont = tok.Encode(p.GetValue(Continuation)!);
            if (cont.Length == 0)
                throw new ArgumentException("--continuation: the text is empty; give at least one token to score");
            int[] labels = [.. prompt, .. cont];
            Common.CheckLength(model, labels.Length);
            var lp = SequenceScorer.Score(ids => model.Forward(ids).Logits, model.VocabSize, labels, prompt.Length);
            if (p.GetValue(Common.Json))
            {
                Console.WriteLine(new JsonObject
                {
                    ["ids"] = new JsonArray(labels.Select(i => (JsonNode)i).ToArray()),
                    ["sequence_logprob"] = lp.SequenceLogprob,
                    ["sum_logprob_all_generated_tokens"] = lp.SumLogprobAllGeneratedTokens,
                    ["per_token_logprob"] = new JsonArray(lp.PerTokenLogprob.Select(x => (JsonNode)x).ToArray()),
                }.ToJsonString(StepsCommand.JsonOut));
                return 0;
            }
            var table = new Table().AddColumn("Token").AddColumn("log p").AddColumn("p");
            for (int i = 0; i < cont.Length; i++)
                table.AddRow(Markup.Escape(StepsCommand.Visible(tok.Decode([cont[i]]))), $"{lp.PerTokenLogprob[i]:F4}",
                    $"{Math.Exp(lp.PerTokenLogprob[i]):P2}");
            AnsiConsole.Write(table);
            Console.WriteLine($"sum over all {cont.Length} continuation tokens: {lp.SumLogprobAllGeneratedTokens:F4}");
            Console.WriteLine($"sequence_logprob (notebook definition, first token left out): {lp.SequenceLogprob:F4}");
            return 0;
        });
        return c;
    }
}
