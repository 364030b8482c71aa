using System.CommandLine;
using ScratchGpt.Loading;
using ScratchGpt.Training;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt init: a randomly initialised GPT-2 of a published (or custom) shape, in the Hugging Face
/// layout.</summary>
public static class InitCommand
{
    static readonly Option<string> Config = new("--config")
    {
        Description = "gpt2 | gpt2-medium | gpt2-large | gpt2-xl | distilgpt2",
        DefaultValueFactory = _ => "gpt2",
    };
    static readonly Option<string> Out = new("--out") { Description = "output folder", Required = true };
    static readonly Option<string> DType = new("--dtype")
    {
        Description = "f32 | f16 | bf16",
        DefaultValueFactory = _ => "f32",
    };
    static readonly Option<int> Seed = new("--seed") { DefaultValueFactory = _ => 0 };
    static readonly Option<int?> NLayer = new("--n-layer") { Description = "override the preset's n_layer" };
    static readonly Option<int?> NHead = new("--n-head") { Description = "override n_head" };
    static readonly Option<int?> NEmbd = new("--n-embd") { Description = "override n_embd" };
    static readonly Option<int?> NPositions = new("--n-positions") { Description = "override n_positions" };

    public static Command Create()
    {
        var c = new Command("init",
            "Write a randomly initialised GPT-2 checkpoint (config.json + model.safetensors) with real shapes, for " +
            "benchmarks and tests.");
        foreach (var o in new Option[] { Config, Out, DType, Seed, NLayer, NHead, NEmbd, NPositions, Common.Verbose })
            c.Options.Add(o);
        Common.Action(c, p =>
        {
            var cfg = Gpt2Config.Preset(p.GetValue(Config)!);
            cfg = cfg with
            {
                NLayer = p.GetValue(NLayer) ?? cfg.NLayer, NHead = p.GetValue(NHead) ?? cfg.NHead,
                NEmbd = p.GetValue(NEmbd) ?? cfg.NEmbd, NPositions = p.GetValue(NPositions) ?? cfg.NPositions,
            };
            string dtype = p.GetValue(DType)!;
            if (dtype is not ("f32" or "f16" or "bf16"))
                throw new ArgumentException($"--dtype must be f32, f16 or bf16, got '{dtype}'");
            cfg.Validate("--config");
            string dir = p.GetValue(Out)!;
            Directory.CreateDirectory(dir);
            RandomCheckpoint.Write(cfg, dir, dtype, p.GetValue(Seed));
            // as save_pretrained writes the tokenizer too
            Trainer.CopyTokenizerFiles(Loading.ModelFolder.BundledWeightsDirectory, dir);
            Console.Error.WriteLine($"wrote {dir}: {cfg.NLayer} layers, {cfg.NHead} heads, n_embd " +
                $"{cfg.NEmbd}, {dtype}");
            return 0;
        });
        return c;
    }
}
