using System.Runtime.InteropServices;

namespace ScratchGpt.Loading;

/// <summary>
/// Q8_0 matrices in a safetensors file, as <c>convert --dtype q8_0</c> writes them: for a matrix held [out, in]
/// (Conv1D weights too: transposed from the checkpoint's [in, out], so each block of 32 runs along a row),
///     NAME           I8  [out, in]        the signed bytes q
///     NAME_scale     F16 [out, in / 32]   one scale d per block of 32
/// and w = d · q. Vectors stay float32. config.json says so in "quantization_config" ({"quant_method": "q8_0",
/// "block_size": 32}). transformers cannot read such a file; llama.cpp reads the same numbers from
/// <c>convert --to gguf --dtype q8_0</c>.
/// </summary>
public static class Q8_0Checkpoint
{
    public const string ScaleSuffix = "_scale";

    public static void Add(SafetensorsWriter w, string name, int[] shape, ReadOnlySpan<float> values)
    {
        int rows = shape[0], cols = shape[1];
        if (cols % Q8_0.BlockSize != 0)
            throw new ArgumentException($"{name}: Q8_0 needs rows of whole blocks of {Q8_0.BlockSize}, got {cols}");
        var (q, d) = Q8_0.Split(values);
        w.Add(name, SafetensorsDType.I8, [rows, cols], MemoryMarshal.AsBytes(q.AsSpan()).ToArray());
        w.Add(name + ScaleSuffix, SafetensorsDType.F16, [rows, cols / Q8_0.BlockSize],
            MemoryMarshal.AsBytes(d.AsSpan()).ToArray());
    }

    /// <summary>d · q for a matrix stored this way, [out, in] as the runtime holds it.</summary>
    public static float[] Read(SafetensorsFile file, TensorInfo q, string scaleName, int rows, int cols)
    {
        if (!q.Shape.SequenceEqual([rows, cols]))
            throw new ModelLoadException($"{file.Path}: tensor '{q.Name}' has shape {q.ShapeText}, expected [{rows}, " +
                $"{cols}] (Q8_0, [out, in])");
        if (cols % Q8_0.BlockSize != 0 || !file.Tensors.TryGetValue(scaleName, out var s)
            || s.DType != SafetensorsDType.F16
            || !s.Shape.SequenceEqual([rows, cols / Q8_0.BlockSize]))
            throw new ModelLoadException($"{file.Path}: I8 tensor '{q.Name}' needs '{scaleName}' F16 [{rows}, " +
                $"{cols / Q8_0.BlockSize}] (Q8_0 scales)");
        return Q8_0.Dequantize(MemoryMarshal.Cast<byte, sbyte>(file.RawBytes(q)), MemoryMarshal.Cast<byte,
            Half>(file.RawBytes(s)));
    }
}
