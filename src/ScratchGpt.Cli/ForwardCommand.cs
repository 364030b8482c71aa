using System.CommandLine;
using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt forward: one forward pass, written as safetensors with the fixtures' tensor names (--out),
/// and/or every intermediate activation under TransformerLens' names (--cache).</summary>
public static class ForwardCommand
{
    static readonly Option<string?> Out = new("--out")
    {
        Description = "output .safetensors file: logits (and attentions / hidden states)",
    };
    static readonly Option<string?> Cache = new("--cache")
    {
        Description = "write every activation under TransformerLens' names (hook_embed … ln_final.hook_normalized) " +
            "to this .safetensors file",
    };
    static readonly Option<bool> Attentions = new("--attentions")
    {
        Description = "also write attentions.{i} [1, heads, T, T]",
    };
    static readonly Option<bool> Hidden = new("--hidden-states")
    {
        Description = "also write hidden_states.{i} [1, T, n_embd]",
    };

    public static Command Create()
    {
        var c = new Command("forward",
            "Run the model on a prompt and write logits (and attentions / hidden states) to a safetensors file.");
        Common.AddModelOptions(c);
        c.Options.Add(Common.Prompt);
        c.Options.Add(Out);
        c.Options.Add(Cache);
        c.Options.Add(Attentions);
        c.Options.Add(Hidden);
        Common.Action(c, p =>
        {
            string? outPath = p.GetValue(Out), cachePath = p.GetValue(Cache);
            if (outPath is null && cachePath is null)
                throw new ArgumentException("give --out FILE.safetensors, --cache FILE.safetensors, or both");
            using var model = Common.LoadModel(p);
            int[] ids = Common.EncodePrompt(model, p.GetValue(Common.Prompt)!);
            Common.CheckLength(model, ids.Length);
            var cfg = model.Config;
            long T = ids.Length;
            if (cachePath is not null)
            {
                var cache = Inspection.ActivationCache.Run(model, ids);
                Inspection.ActivationCache.Save(cache, ids, cfg, cachePath);
                Console.Error.WriteLine($"wrote {cachePath}: {cache.Count} activations of {T} positions");
            }
            if (outPath is null) return 0;
            var r = model.Forward(ids,
                new ForwardOptions { Attentions = p.GetValue(Attentions), HiddenStates = p.GetValue(Hidden) });
            var w = new SafetensorsWriter()
                .AddInt64("input_ids", [1, T], ids.Select(i => (long)i).ToArray())
                .AddFloat32("logits", [1, T, cfg.VocabSize], r.Logits);
            for (int i = 0; i < (r.HiddenStates?.Length ?? 0); i++)
                w.AddFloat32($"hidden_states.{i}", [1, T, cfg.NEmbd], r.HiddenStates![i]);
            for (int i = 0; i < (r.Attentions?.Length ?? 0); i++)
                w.AddFloat32($"attentions.{i}", [1, cfg.NHead, T, T], r.Attentions![i]);
            w.Save(outPath);
            Console.Error.WriteLine($"wrote {outPath}: logits [1, {T}, {cfg.VocabSize}]");
            return 0;
        });
        return c;
    }
}
