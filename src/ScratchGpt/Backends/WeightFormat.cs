using System.Numerics.Tensors;

namespace ScratchGpt.Backends;

/// <summary>How the GPU backends keep 16-bit weights: the raw 16-bit patterns in device memory, and a format code
/// that kernels/weights.cl's load_weight widens by (WEIGHT_F32 / WEIGHT_F16 / WEIGHT_BF16).</summary>
public static class WeightFormat
{
    public const int Float32 = 0, Float16 = 1, BFloat16 = 2;

    public static int Code(WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => Float16,
        WeightPrecision.BFloat16 => BFloat16,
        _ => Float32,
    };

    /// <summary>The 16-bit patterns of <paramref name="data"/> (values that came from a 16-bit checkpoint convert exactly).</summary>
    public static ushort[] SixteenBit(ReadOnlySpan<float> data, WeightPrecision precision)
    {
        var bits = new ushort[data.Length];
        if (precision == WeightPrecision.Float16)
            TensorPrimitives.ConvertToHalf(data, System.Runtime.InteropServices.MemoryMarshal.Cast<ushort, Half>(bits.AsSpan()));
        else if (precision == WeightPrecision.BFloat16)
            for (int i = 0; i < bits.Length; i++) bits[i] = Loading.DTypeConversion.FloatToBFloat16(data[i]);
        else throw new ArgumentException("float32 weights have no 16-bit form", nameof(precision));
        return bits;
    }
}
