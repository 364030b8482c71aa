namespace ScratchGpt.Loading;

/// <summary>
/// Finds GPT-2's tensors in a checkpoint file (safetensors or pytorch_model.bin) and checks their
/// shapes against the config.
///
/// Two key layouts exist: save_pretrained writes "transformer.h.0.attn.c_attn.weight" (lm_head.weight
/// omitted because it is tied to wte); the Hub's original files write "h.0.attn.c_attn.weight" and
/// also carry the causal-mask buffers "h.{i}.attn.bias" / "attn.masked_bias", which are not weights
/// and are ignored.
/// </summary>
public sealed class Gpt2Checkpoint
{
    private readonly ITensorFile _file;
    private readonly string _prefix;
    public Gpt2Config Config { get; }

    public Gpt2Checkpoint(ITensorFile file, Gpt2Config config)
    {
        _file = file;
        Config = config;
        _prefix = file.Tensors.ContainsKey("transformer.wte.weight") ? "transformer." : "";
        if (!file.Tensors.ContainsKey(_prefix + "wte.weight"))
            throw new ModelLoadException($"{file.Path}: tensor 'transformer.wte.weight' (or 'wte.weight') not found: " +
                "not a GPT-2 checkpoint");
    }

    /// <summary>The dtype of the embedding matrix, taken as the checkpoint's dtype (I8: Q8_0 matrices, U8: Q4_0, see
    /// <see cref="QuantizedCheckpoint"/>).</summary>
    public SafetensorsDType DType => _file.Tensors[_prefix + "wte.weight"].DType;

    /// <summary>Reads a tensor as float32 after checking its shape. <paramref name="name"/> is without the
    /// "transformer." prefix.</summary>
    public float[] Read(string name, params long[] shape)
    {
        string full = _prefix + name;
        if (!_file.Tensors.TryGetValue(full, out var t))
            throw new ModelLoadException($"{_file.Path}: tensor '{full}' not found (expected shape " +
                $"[{string.Join(", ", shape)}])");
        if (!t.Shape.SequenceEqual(shape))
            throw new ModelLoadException($"{_file.Path}: tensor '{full}' has shape {t.ShapeText}, expected " +
                $"[{string.Join(", ", shape)}] from config.json");
        var data = new float[t.ElementCount];
        _file.ReadFloat32(t, data);
        CheckFinite(full, data);
        return data;
    }

    /// <summary>Reads one tensor of <see cref="Gpt2Layout"/> as the runtime holds it: shape checked against the
    /// config, widened to float32, Conv1D weights transposed from [in, out] to [out, in].</summary>
    public float[] Read(TensorSpec spec)
    {
        string full = _prefix + spec.Name;
        if (_file.Tensors.TryGetValue(full, out var t) && _file is SafetensorsFile sf
            && QuantizedCheckpoint.Format(t.DType) is { } format)
        {
            if (!spec.IsMatMulWeight)
                throw new ModelLoadException($"{_file.Path}: tensor '{full}' is {t.DType}; only matrices are " +
                    $"stored in {format}");
            float[] w = QuantizedCheckpoint.Read(sf, t, full + QuantizedCheckpoint.ScaleSuffix, spec.Shape[0],
                spec.Shape[1]);
            CheckFinite(full, w);
            return w;
        }
        int[] fileShape = spec.CheckpointShape;
        float[] data = Read(spec.Name, fileShape.Select(d => (long)d).ToArray());
        return spec.IsConv1D ? BlockedTranspose.Transposed(data, fileShape[0], fileShape[1]) : data;
    }

    /// <summary>NaN or ±Inf in a weight would silently turn every logit into NaN; refuse it at load,
    /// naming the tensor and the first bad index. (A SIMD sum finds "something is off" fast; the slow
    /// scan runs only then.)</summary>
    private void CheckFinite(string name, float[] data)
    {
        if (float.IsFinite(System.Numerics.Tensors.TensorPrimitives.Sum(data))) return;
        int bad = Array.FindIndex(data, v => !float.IsFinite(v));
        if (bad >= 0)
            throw new ModelLoadException($"{_file.Path}: tensor '{name}' holds {data[bad]} at index {bad}: the " +
                "checkpoint is corrupt");
    }
}
