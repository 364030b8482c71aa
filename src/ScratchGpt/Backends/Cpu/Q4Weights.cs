namespace ScratchGpt.Backends.Cpu;

/// <summary>A Q4_0 weight matrix [rows, cols] as the CPU backend keeps it: 16 bytes of four-bit codes and one scale
/// per block of 32 along a row (cols is a multiple of 32), in <see cref="Loading.Q4_0"/>'s order,
///     w[r, 32b + j] = Scales[r·cols/32 + b] · (low four bits of Codes[(r·cols + 32b)/2 + j] − 8),
///     w[r, 32b + 16 + j] = the same with the high four bits.
/// The scales are the float16 values of the Q4_0 format, held widened (20 bytes per 32 weights instead of 18; see
/// <see cref="Q8Weights"/>). Both in <see cref="HugePageMemory"/>.</summary>
public sealed record Q4Weights(ReadOnlyMemory<byte> Codes, ReadOnlyMemory<float> Scales)
{
    public static Q4Weights From(ReadOnlySpan<float> data)
    {
        var codes = HugePageMemory.Allocate<byte>(data.Length / 2);
        var d = new Half[data.Length / Loading.Q4_0.BlockSize];
        Loading.Q4_0.Split(data, codes.Span, d);   // the codes straight into their memory
        var scales = HugePageMemory.Allocate<float>(d.Length);
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(d, scales.Span);
        return new Q4Weights(codes, scales);
    }

    /// <summary>Row <paramref name="r"/> of <paramref name="cols"/> values, widened: d · (q − 8) per block.</summary>
    public void Dequantize(int r, int cols, Span<float> dst)
    {
        const int B = Loading.Q4_0.BlockSize;
        var codes = Codes.Span.Slice(r * cols / 2, cols / 2);
        var scales = Scales.Span.Slice(r * cols / B, cols / B);
        for (int b = 0; b < cols / B; b++)
            Loading.Q4_0.DequantizeBlock(codes.Slice(b * B / 2, B / 2), scales[b], dst.Slice(b * B));
    }
}
