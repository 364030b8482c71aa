using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;
using ScratchGpt.Tokenization;

namespace ScratchGpt.Model;

/// <summary>
/// A Hugging Face model folder into a runnable <see cref="Gpt2Model"/>: config.json, the tokenizer
/// (<see cref="Gpt2Tokenizer.ForModel"/>), generation_config.json as generation defaults, the weights in the
/// precision asked for (default: the checkpoint's), on the backend <see cref="BackendFactory"/> picks.
/// </summary>
public static class Gpt2ModelLoader
{
    /// <summary>Loads <paramref name="directory"/>; every problem is one <see cref="ModelLoadException"/>.</summary>
    public static Gpt2Model Load(string directory, ModelLoadOptions options)
    {
        var config = ModelFolder.LoadConfig(directory);
        var tokenizer = Gpt2Tokenizer.ForModel(directory, options.TokenizerDirectory, config.VocabSize, options.Note);
        if (tokenizer.VocabSize > config.VocabSize)
            throw new ModelLoadException($"{directory}: the tokenizer has {tokenizer.VocabSize} tokens but " +
                $"config.json says vocab_size {config.VocabSize}");
        var genDefaults = ModelFolder.ReadGenerationConfig(directory) is { } json
            ? GenerationConfig.FromJson(json, Path.Combine(directory, "generation_config.json"))
            : null;

        if (options.Precision is WeightPrecision.Q8_0 or WeightPrecision.Q4_0
            && config.RowNotInBlocksOf(Q8_0.BlockSize) is var (key, width))
            throw new ModelLoadException($"{directory}: {options.Precision} quantizes rows in blocks of " +
                $"{Q8_0.BlockSize}; {key} {width} is not a multiple");
        using var file = ModelFolder.OpenWeights(directory);
        var ckpt = new Gpt2Checkpoint(file, config);
        var precision = options.Precision ?? ckpt.DType switch
        {
            SafetensorsDType.F16 => WeightPrecision.Float16,
            SafetensorsDType.BF16 => WeightPrecision.BFloat16,
            SafetensorsDType.I8 => WeightPrecision.Q8_0,
            SafetensorsDType.U8 => WeightPrecision.Q4_0,
            _ => WeightPrecision.Float32,
        };
        var backend = BackendFactory.Create(options.Device, options.Log);
        if (options.WrapBackend is not null) backend = options.WrapBackend(backend);
        try
        {
            // A cache the device cannot hold fails here, with the device's own message, before any weight is uploaded.
            if (!backend.HoldsCache(options.KvCache)) backend.AllocateCache(0, options.KvCache).Dispose();
            return new Gpt2Model(ckpt, backend, precision)
            {
                KvCache = options.KvCache,
                Tokenizer = tokenizer,
                GenerationDefaults = genDefaults,
                CheckpointDType = QuantizedCheckpoint.Format(ckpt.DType) ?? ckpt.DType.Name(),
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
