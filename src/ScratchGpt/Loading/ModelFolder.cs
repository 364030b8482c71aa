using ScratchGpt.Tokenization;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Model;

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

    /// <summary>
    /// The tokenizer, from the first of: <paramref name="tokenizerDirectory"/>; the model folder's vocab.json +
    /// merges.txt; its tokenizer.json; the GPT-2 files bundled in weights/. Borrowing the bundled files is said
    /// through <paramref name="note"/> (except for the models shipped in weights/, which use them by design) and
    /// refused when the model's vocabulary (<paramref name="modelVocabSize"/>) is smaller than GPT-2's: its ids
    /// would reach past the embedding table.
    /// </summary>
    public static Gpt2Tokenizer LoadTokenizer(string? modelDirectory, string? tokenizerDirectory, int? modelVocabSize = null,
        Action<string>? note = null)
    {
        if (tokenizerDirectory is not null)
        {
            if (!Directory.Exists(tokenizerDirectory)) throw new ModelLoadException($"{tokenizerDirectory}: tokenizer folder not found");
            return Gpt2Tokenizer.Load(tokenizerDirectory);
        }
        if (modelDirectory is not null && BpeModelFiles.ExistIn(modelDirectory))
            return Gpt2Tokenizer.Load(modelDirectory);
        var bundled = Gpt2Tokenizer.Load(BundledWeightsDirectory);
        if (modelDirectory is null || IsBundled(modelDirectory)) return bundled;
        if (modelVocabSize is int v && v < bundled.VocabSize)
            throw new ModelLoadException($"{modelDirectory}: no vocab.json + merges.txt or tokenizer.json, and its vocab_size {v} is " +
                $"smaller than the bundled GPT-2 tokenizer's {bundled.VocabSize}: give the model's tokenizer with --tokenizer DIR");
        note?.Invoke($"{modelDirectory} has no vocab.json + merges.txt or tokenizer.json: using the bundled GPT-2 tokenizer");
        return bundled;
    }

    private static bool IsBundled(string directory) =>
        Path.GetFullPath(directory).StartsWith(Path.GetFullPath(BundledWeightsDirectory) + Path.DirectorySeparatorChar, StringComparison.Ordinal);

    public static Gpt2Config LoadConfig(string directory)
    {
        if (!Directory.Exists(directory)) throw new ModelLoadException($"{directory}: model folder not found");
        return Gpt2Config.Load(Path.Combine(directory, "config.json"));
    }

    /// <summary>The folder's weights: model.safetensors, else pytorch_model.bin (read without executing its pickle).</summary>
    public static ITensorFile OpenWeights(string directory)
    {
        string safetensors = Path.Combine(directory, "model.safetensors");
        if (File.Exists(safetensors)) return SafetensorsFile.Open(safetensors);
        string bin = Path.Combine(directory, "pytorch_model.bin");
        if (File.Exists(bin)) return Torch.TorchCheckpointFile.Open(bin);
        throw new ModelLoadException($"{safetensors}: file not found (ScratchGpt reads model.safetensors, or pytorch_model.bin)");
    }

    public static Gpt2Model Load(string directory, ModelLoadOptions options)
    {
        var config = LoadConfig(directory);
        var tokenizer = LoadTokenizer(directory, options.TokenizerDirectory, config.VocabSize, options.Note);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new ModelLoadException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens but config.json says vocab_size {config.VocabSize}");
        string genPath = Path.Combine(directory, "generation_config.json");
        var genDefaults = File.Exists(genPath) ? GenerationConfig.LoadFile(genPath) : null;

        using var file = OpenWeights(directory);
        var ckpt = new Gpt2Checkpoint(file, config);
        var precision = options.Precision ?? ckpt.DType switch
        {
            SafetensorsDType.F16 => WeightPrecision.Float16,
            SafetensorsDType.BF16 => WeightPrecision.BFloat16,
            _ => WeightPrecision.Float32,
        };
        var backend = BackendFactory.Create(options.Device, options.Log);
        if (options.WrapBackend is not null) backend = options.WrapBackend(backend);
        try
        {
            return new Gpt2Model(ckpt, backend, precision)
            {
                Tokenizer = tokenizer,
                GenerationDefaults = genDefaults,
                CheckpointDType = ckpt.DType.Name(),
                Directory = directory,
            };
        }
        catch
        {
            backend.Dispose();
            throw;
        }
    }
}
