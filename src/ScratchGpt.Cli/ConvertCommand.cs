using System.CommandLine;
using ScratchGpt.Loading;
using ScratchGpt.Tokenization;
using ScratchGpt.Training;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt convert: rewrite a model folder's weights (e.g. an old pytorch_model.bin) as model.safetensors,
/// or the whole model with its tokenizer as one GGUF file for llama.cpp.</summary>
public static class ConvertCommand
{
    static readonly Option<string> To = new("--to")
    {
        Description = "output format: safetensors (a model folder) | gguf (one file for llama.cpp)",
        DefaultValueFactory = _ => "safetensors",
    };
    static readonly Option<string> Out = new("--out")
    {
        Description = "output folder (safetensors) or .gguf file",
        Required = true,
    };
    static readonly Option<string> DType = new("--dtype")
    {
        Description = "f32 | f16 | bf16 | q8_0 | q4_0 (safetensors); f32 | f16 | q8_0 | q4_0 (gguf)",
        DefaultValueFactory = _ => "f32",
    };

    public static Command Create()
    {
        var c = new Command("convert",
            "Convert a GPT-2 folder's weights (pytorch_model.bin, read without executing it) to model.safetensors in " +
            "the save_pretrained layout, or to GGUF for llama.cpp.");
        foreach (var o in new Option[] { Common.Model, Common.Tokenizer, To, Out, DType, Common.Verbose })
            c.Options.Add(o);
        Common.AddHubOptions(c);
        Common.Action(c, p =>
        {
            string to = p.GetValue(To)!, dtype = p.GetValue(DType)!;
            if (to is not ("safetensors" or "gguf"))
                throw new ArgumentException($"--to must be safetensors or gguf, got '{to}'");
            string src = Common.ResolveModel(p, p.GetValue(Common.Model)) ?? ModelFolder.DefaultModelDirectory,
                dst = p.GetValue(Out)!;
            if (to == "gguf")
            {
                Gpt2Gguf.FileType(dtype);
                var config = ModelFolder.LoadConfig(src);
                var tokenizer = Gpt2Tokenizer.ForModel(src, p.GetValue(Common.Tokenizer), config.VocabSize,
                    n => Console.Error.WriteLine($"note: {n}"));
                using var file = ModelFolder.OpenWeights(src);
                Gpt2Gguf.Write(new Gpt2Checkpoint(file, config), tokenizer.ToGguf(config.VocabSize), dtype,
                    Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(src))), dst);
                Console.Error.WriteLine($"wrote {dst} (GGUF, gpt2, {dtype}, {Gpt2Layout.ParameterCount(config):N0} " +
                    "parameters)");
                return 0;
            }
            if (dtype is not ("f32" or "f16" or "bf16" or "q8_0" or "q4_0"))
                throw new ArgumentException($"--dtype must be f32, f16, bf16, q8_0 or q4_0, got '{dtype}'");
            bool quantized = dtype is "q8_0" or "q4_0";
            var parameters = Gpt2Parameters.Load(src);
            if (quantized && parameters.Config.RowNotInBlocksOf(Q8_0.BlockSize) is var (key, width))
                throw new ArgumentException($"--dtype {dtype} needs {key} to be a multiple of {Q8_0.BlockSize}, " +
                    $"got {width}");
            Directory.CreateDirectory(dst);
            parameters.SaveSafetensors(Path.Combine(dst, "model.safetensors"), dtype);
            // quantized matrices are a layout of this project's: config.json says so (quantization_config)
            if (quantized)
                AtomicFile.WriteAllText(Path.Combine(dst, "config.json"), parameters.Config.ToJson(dtype));
            foreach (string name in new[] { "config.json", "generation_config.json", "vocab.json", "merges.txt",
                "tokenizer.json", "tokenizer_config.json" })
            {
                if (quantized && name == "config.json") continue;
                if (File.Exists(Path.Combine(src, name)))
                    AtomicFile.Copy(Path.Combine(src, name), Path.Combine(dst, name));
            }
            Console.Error.WriteLine($"wrote {Path.Combine(dst, "model.safetensors")} ({parameters.Count:N0} " +
                $"parameters, {dtype})");
            return 0;
        });
        return c;
    }
}
