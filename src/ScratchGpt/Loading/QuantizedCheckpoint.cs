using System.Runtime.InteropServices;

namespace ScratchGpt.Loading;

/// <summary>
/// Q8_0 and Q4_0 matrices in a safetensors file, as <c>convert --dtype q8_0 | q4_0</c> writes them. A matrix is held
/// [out, in] (Conv1D weights too: transposed from the checkpoint's [in, out], so each block of 32 runs along a row):
///     Q8_0:  NAME  I8 [out, in]       the signed bytes q                                w = d · q
///     Q4_0:  NAME  U8 [out, in / 2]   two codes a byte, as llama.cpp packs a block:     w = d · (q − 8)
///                                     byte j of a block holds code j (low four bits) and code j + 16 (high four)
///     both:  NAME_scale F16 [out, in / 32]   one scale d per block of 32
/// Vectors stay float32. config.json says which in "quantization_config" ({"quant_method": "q8_0" | "q4_0",
/// "block_size": 32}); the codes' dtype says it too, and is what the loader goes by. transformers cannot read such a
/// file; llama.cpp reads the same numbers from <c>convert --to gguf --dtype …</c>. Quantizing a stored matrix again
/// gives back its codes and scales exactly (a block's value of largest magnitude is ±127 · d, or −8 · d, from which
/// the quantizer takes d again), so a stored model runs as the same model as quantizing the float32 one at load.
/// </summary>
public static class QuantizedCheckpoint
{
    public const string ScaleSuffix = "_scale";

    /// <summary>The dtype of a format's codes: I8 for q8_0, U8 for q4_0.</summary>
    public static SafetensorsDType CodeDType(string dtype) => dtype switch
    {
        "q8_0" => SafetensorsDType.I8,
        "q4_0" => SafetensorsDType.U8,
        _ => throw new ArgumentException($"not a quantized dtype: '{dtype}'"),
    };

    /// <summary>The format a tensor of this dtype holds ("Q8_0", "Q4_0"), or null for plain floats.</summary>
    public static string? Format(SafetensorsDType codes) => codes switch
    {
        SafetensorsDType.I8 => "Q8_0",
        SafetensorsDType.U8 => "Q4_0",
        _ => null,
    };

    public static void Add(SafetensorsWriter w, string name, int[] shape, ReadOnlySpan<float> values, string dtype)
    {
        int rows = shape[0], cols = shape[1];
        if (cols % Q8_0.BlockSize != 0)
            throw new ArgumentException($"{name}: {dtype} needs rows of whole blocks of {Q8_0.BlockSize}, got {cols}");
        var d = new Half[values.Length / Q8_0.BlockSize];
        if (CodeDType(dtype) == SafetensorsDType.U8)
        {
            var codes = new byte[values.Length / 2];
            Q4_0.Split(values, codes, d);
            w.Add(name, SafetensorsDType.U8, [rows, cols / 2], codes);
        }
        else
        {
            var q = new sbyte[values.Length];
            Q8_0.Split(values, q, d);
            w.Add(name, SafetensorsDType.I8, [rows, cols], MemoryMarshal.AsBytes(q.AsSpan()).ToArray());
        }
        w.Add(name + ScaleSuffix, SafetensorsDType.F16, [rows, cols / Q8_0.BlockSize],
            MemoryMarshal.AsBytes(d.AsSpan()).ToArray());
    }

    /// <summary>The weights of a matrix stored this way, [out, in] as the runtime holds it.</summary>
    public static float[] Read(SafetensorsFile file, TensorInfo codes, string scaleName, int rows, int cols)
    {
        string format = Format(codes.DType)
            ?? throw new ArgumentException($"'{codes.Name}' is {codes.DType}, not a quantized matrix");
        int codeCols = codes.DType == SafetensorsDType.U8 ? cols / 2 : cols;
        if (!codes.Shape.SequenceEqual([rows, codeCols]))
            throw new ModelLoadException($"{file.Path}: tensor '{codes.Name}' has shape {codes.ShapeText}, expected " +
                $"[{rows}, {codeCols}] ({format}, [out, {(codeCols == cols ? "in" : "in / 2")}])");
        if (cols % Q8_0.BlockSize != 0 || !file.Tensors.TryGetValue(scaleName, out var s)
            || s.DType != SafetensorsDType.F16
            || !s.Shape.SequenceEqual([rows, cols / Q8_0.BlockSize]))
            throw new ModelLoadException($"{file.Path}: {codes.DType} tensor '{codes.Name}' needs '{scaleName}' F16 " +
                $"[{rows}, {cols / Q8_0.BlockSize}] ({format} scales)");
        var d = MemoryMarshal.Cast<byte, Half>(file.RawBytes(s));
        if (format == "Q8_0") return Q8_0.Dequantize(MemoryMarshal.Cast<byte, sbyte>(file.RawBytes(codes)), d);
        var w = new float[(long)rows * cols];
        Q4_0.Dequantize(file.RawBytes(codes), d, w);
        return w;
    }
}
