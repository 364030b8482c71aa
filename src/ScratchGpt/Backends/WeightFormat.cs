using System.Numerics.Tensors;

namespace ScratchGpt.Backends;

/// <summary>How the backends keep 16-bit weights: the raw 16-bit patterns in device memory, which the kernels widen
/// through their weight type (kernels/IWeight.cs: Float32Weight, Float16Weight, BFloat16Weight).</summary>
public static class WeightFormat
{
    public const int Float32 = 0, Float16 = 1, BFloat16 = 2;

    public static int Code(WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => Float16,
        WeightPrecision.BFloat16 => BFloat16,
        _ => Float32,
    };

    /// <summary>float32 → float16, as the CPU backend keeps them (values from a float16 checkpoint convert
    /// exactly).</summary>
    public static Half[] ToFloat16(ReadOnlySpan<float> data)
    {
        var h = new Half[data.Length];
        TensorPrimitives.ConvertToHalf(data, h);
        return h;
    }

    /// <summary>float32 → bfloat16 bits (the top half of each float, rounded; exact for values from a bfloat16
    /// checkpoint).</summary>
    public static ushort[] ToBFloat16(ReadOnlySpan<float> data)
    {
        var b = new ushort[data.Length];
        ToBFloat16(data, b);
        return b;
    }

    /// <summary><see cref="ToBFloat16(ReadOnlySpan{float})"/> into <paramref name="bits"/>.</summary>
    public static void ToBFloat16(ReadOnlySpan<float> data, Span<ushort> bits)
    {
        for (int i = 0; i < data.Length; i++) bits[i] = Loading.DTypeConversion.FloatToBFloat16(data[i]);
    }

    private static ushort[] Float16Bits(ReadOnlySpan<float> data)
    {
        var bits = new ushort[data.Length];   // converted straight into the upload array, no Half[] in between
        TensorPrimitives.ConvertToHalf(data, System.Runtime.InteropServices.MemoryMarshal.Cast<ushort,
            Half>(bits.AsSpan()));
        return bits;
    }

    /// <summary>The 16-bit patterns of <paramref name="data"/> in <paramref name="precision"/>, as the GPU backends
    /// upload them.</summary>
    public static ushort[] SixteenBit(ReadOnlySpan<float> data, WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => Float16Bits(data),
        WeightPrecision.BFloat16 => ToBFloat16(data),
        _ => throw new ArgumentException("float32 weights have no 16-bit form", nameof(precision)),
    };
}
