using System.CommandLine;
using ScratchGpt.Loading;
using ScratchGpt.Training;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt convert: rewrite a model folder's weights (e.g. an old pytorch_model.bin) as model.safetensors.</summary>
public static class ConvertCommand
{
    static readonly Option<string> Model = new("--model") { Description = "model folder (config.json + model.safetensors or pytorch_model.bin) or Hub model id", Required = true };
    static readonly Option<string> To = new("--to") { Description = "output format: safetensors", DefaultValueFactory = _ => "safetensors" };
    static readonly Option<string> Out = new("--out") { Description = "output folder", Required = true };
    static readonly Option<string> DType = new("--dtype") { Description = "f32 | f16 | bf16", DefaultValueFactory = _ => "f32" };

    public static Command Create()
    {
        var c = new Command("convert", "Convert a GPT-2 folder's weights (pytorch_model.bin, read without executing it) to model.safetensors in the save_pretrained layout.");
        foreach (var o in new Option[] { Model, To, Out, DType, Common.Verbose }) c.Options.Add(o);
        Common.AddHubOptions(c);
        Common.Action(c, p =>
        {
            if (p.GetValue(To) != "safetensors") throw new ArgumentException($"--to must be 'safetensors', got '{p.GetValue(To)}'");
            string dtype = p.GetValue(DType)!;
            if (dtype is not ("f32" or "f16" or "bf16")) throw new ArgumentException($"--dtype must be f32, f16 or bf16, got '{dtype}'");
            string src = Common.ResolveModel(p, p.GetValue(Model))!, dst = p.GetValue(Out)!;
            var parameters = Gpt2Parameters.Load(src);
            Directory.CreateDirectory(dst);
            parameters.SaveSafetensors(Path.Combine(dst, "model.safetensors"), dtype);
            foreach (string name in new[] { "config.json", "generation_config.json", "vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json" })
            {
                if (File.Exists(Path.Combine(src, name))) AtomicFile.Copy(Path.Combine(src, name), Path.Combine(dst, name));
            }
            Console.Error.WriteLine($"wrote {Path.Combine(dst, "model.safetensors")} ({parameters.Count:N0} parameters, {dtype})");
            return 0;
        });
        return c;
    }
}
