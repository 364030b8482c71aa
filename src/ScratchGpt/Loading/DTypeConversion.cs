namespace ScratchGpt.Loading;

/// <summary>Widening of 16-bit floats to float32 (both exact), and the rounding the other way for writers.</summary>
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

    /// <summary>float32 → the little-endian bytes of float16, rounded to nearest even (as a file stores
    /// them).</summary>
    public static byte[] FloatToHalfBytes(ReadOnlySpan<float> src)
    {
        var h = new Half[src.Length];
        for (int i = 0; i < h.Length; i++) h[i] = (Half)src[i];
        return System.Runtime.InteropServices.MemoryMarshal.AsBytes(h.AsSpan()).ToArray();
    }

    /// <summary>float32 → bfloat16 with round-to-nearest-even (NaN stays NaN).</summary>
    public static ushort FloatToBFloat16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if (float.IsNaN(f)) return (ushort)((u >> 16) | 0x40);
        uint rounding = 0x7FFF + ((u >> 16) & 1);
        return (ushort)((u + rounding) >> 16);
    }

    /// <summary>Little-endian floating-point bytes of any float dtype as float32 (F16/BF16 widened exactly,
    /// F64 rounded). Returns false for a non-float dtype.</summary>
    public static bool TryToFloat32(ReadOnlySpan<byte> raw, SafetensorsDType dtype, Span<float> dst)
    {
        switch (dtype)
        {
            case SafetensorsDType.F32:
                System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(raw).CopyTo(dst);
                return true;
            case SafetensorsDType.F16:
                HalfToFloat(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, Half>(raw), dst);
                return true;
            case SafetensorsDType.BF16:
                BFloat16ToFloat(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(raw), dst);
                return true;
            case SafetensorsDType.F64:
                var d = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(raw);
                for (int i = 0; i < d.Length; i++) dst[i] = (float)d[i];
                return true;
            default: return false;
        }
    }
}
