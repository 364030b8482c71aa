using ScratchGpt.Loading;

namespace ScratchGpt.Backends;

/// <summary>What a stored weight costs in memory, and so what a matmul reads per weight.</summary>
public static class WeightPrecisionSize
{
    /// <summary>Bytes per weight: 4, 2, 2, or a block's bytes per 32 weights for Q8_0 (34) and Q4_0 (18).</summary>
    public static double BytesPerWeight(this WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float32 => 4,
        WeightPrecision.Q8_0 => (double)Q8_0.BlockBytes / Q8_0.BlockSize,
        WeightPrecision.Q4_0 => (double)Q4_0.BlockBytes / Q4_0.BlockSize,
        _ => 2,
    };
}
