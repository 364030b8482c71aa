namespace ScratchGpt.Backends;

/// <summary>How a backend stores weight matrices.</summary>
public enum WeightPrecision
{
    Float32,
    Float16,
    BFloat16,
    /// <summary>llama.cpp's Q8_0: blocks of 32 signed bytes with one float16 scale (see Loading/Q8_0.cs). The CPU
    /// backend keeps and reads them as such; the reference and ILGPU backends hold the dequantized float32
    /// values.</summary>
    Q8_0,
}

/// <summary>What a stored weight costs in memory, and so what a matmul reads per weight.</summary>
public static class WeightPrecisionSize
{
    /// <summary>Bytes per weight: 4, 2, 2, or Q8_0's 34 bytes per block of 32 (32 int8 + a float16 scale).</summary>
    public static double BytesPerWeight(this WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float32 => 4,
        WeightPrecision.Q8_0 => 34.0 / 32,
        _ => 2,
    };
}
