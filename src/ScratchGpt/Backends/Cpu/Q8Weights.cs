namespace ScratchGpt.Backends.Cpu;

/// <summary>A Q8_0 weight matrix [rows, cols] as the CPU backend keeps it: one signed byte per weight and one
/// scale per block of 32 along a row (cols is a multiple of 32),
///     w[r, c] = Scales[(r·cols + c) / 32] · Quants[r·cols + c].
/// The scales are the float16 values of the Q8_0 format, held widened (36 bytes per 32 weights instead of 34): .NET
/// cannot emit vcvtph2ps, and widening them in the decode loop, exactly and in integer steps, measured faster with
/// AVX-512 but slower with AVX2, where the dot product's own work sets its pace (docs/benchmarks.md, session 16).
/// Both in <see cref="HugePageMemory"/>.</summary>
public sealed record Q8Weights(ReadOnlyMemory<sbyte> Quants, ReadOnlyMemory<float> Scales)
{
    public static Q8Weights From(ReadOnlySpan<float> data)
    {
        var quants = HugePageMemory.Allocate<sbyte>(data.Length);
        var d = new Half[data.Length / Loading.Q8_0.BlockSize];
        Loading.Q8_0.Split(data, quants.Span, d);   // the bytes straight into their memory
        var scales = HugePageMemory.Allocate<float>(d.Length);
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(d, scales.Span);
        return new Q8Weights(quants, scales);
    }

    /// <summary>Row <paramref name="r"/> of <paramref name="cols"/> values, widened: d · q per block.</summary>
    public unsafe void Dequantize(int r, int cols, Span<float> dst)
    {
        const int B = Loading.Q8_0.BlockSize;
        var scales = Scales.Span.Slice(r * cols / B, cols / B);
        fixed (sbyte* q = Quants.Span.Slice(r * cols, cols))
        fixed (float* y = dst)
            for (int b = 0; b < cols / B; b++)
                CpuKernels.DequantizeBlockQ8(q + b * B, scales[b], y + b * B);
    }
}
