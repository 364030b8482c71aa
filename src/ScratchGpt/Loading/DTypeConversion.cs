namespace ScratchGpt.Loading;

/// <summary>Widening of 16-bit floats to float32. Both conversions are exact.</summary>
public static class DTypeConversion
{
    /// <summary>bfloat16 is the top half of a float32: shift its 16 bits left by 16.</summary>
    public static float BFloat16ToFloat(ushort bits) => BitConverter.Int32BitsToSingle(bits << 16);

    public static void BFloat16ToFloat(ReadOnlySpan<ushort> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = BFloat16ToFloat(src[i]);
    }

    public static void HalfToFloat(ReadOnlySpan<Half> src, Span<float> dst) =>
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(src, dst);

    /// <summary>float32 → bfloat16 with round-to-nearest-even (NaN stays NaN).</summary>
    public static ushort FloatToBFloat16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40);
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }
}
