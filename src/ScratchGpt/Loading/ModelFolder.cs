using System.Text.Json.Nodes;

namespace ScratchGpt.Loading;

/// <summary>
/// A Hugging Face model folder: config.json, model.safetensors, optional generation_config.json,
/// and the tokenizer files (vocab.json + merges.txt, or tokenizer.json), which fall back to the GPT-2 files
/// bundled in weights/.
/// </summary>
public static class ModelFolder
{
    /// <summary>The weights/ folder shipped beside the program (GPT-2 tokenizer files and the default model).</summary>
    public static string BundledWeightsDirectory => Path.Combine(AppContext.BaseDirectory, "weights");

    /// <summary>The default model: weights/default.</summary>
    public static string DefaultModelDirectory => Path.Combine(BundledWeightsDirectory, "default");

    /// <summary>True for the folders shipped in weights/ (the default model and the GPT-2 tokenizer files).</summary>
    public static bool IsBundled(string directory) =>
        Path.GetFullPath(directory)
            .StartsWith(Path.GetFullPath(BundledWeightsDirectory) + Path.DirectorySeparatorChar,
            StringComparison.Ordinal);

    public static Gpt2Config LoadConfig(string directory)
    {
        if (!Directory.Exists(directory)) throw new ModelLoadException($"{directory}: model folder not found");
        return Gpt2Config.Load(Path.Combine(directory, "config.json"));
    }

    /// <summary>The folder's weights: model.safetensors, else pytorch_model.bin (read without executing its
    /// pickle).</summary>
    public static ITensorFile OpenWeights(string directory)
    {
        string safetensors = Path.Combine(directory, "model.safetensors");
        if (File.Exists(safetensors)) return SafetensorsFile.Open(safetensors);
        string bin = Path.Combine(directory, "pytorch_model.bin");
        if (File.Exists(bin)) return Torch.TorchCheckpointFile.Open(bin);
        throw new ModelLoadException($"{safetensors}: file not found (ScratchGpt reads model.safetensors, or " +
            "pytorch_model.bin)");
    }

    /// <summary>generation_config.json as a JSON object, or null when the folder has none.</summary>
    public static JsonObject? ReadGenerationConfig(string directory)
    {
        string path = Path.Combine(directory, "generation_config.json");
        return File.Exists(path) ? JsonObjectFile.Read(path) : null;
    }
}
