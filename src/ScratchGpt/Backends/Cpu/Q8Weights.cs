using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>A Q8_0 weight matrix [rows, cols] as the CPU backend keeps it: one signed byte per weight and one
/// float16 scale per block of 32 along a row (cols is a multiple of 32), the format's own 34 bytes per block,
///     w[r, c] = Scales[(r·cols + c) / 32] · Quants[r·cols + c].
/// Where the CPU has no AVX-512 the scales are also held widened to float32 (<see cref="WideScales"/>), and those are
/// what its decode kernel reads: .NET cannot emit vcvtph2ps, and widening eight scales in integer steps pays with
/// 512-bit vectors (two blocks per instruction leave room for it; fewer bytes from memory) but slows the 256-bit
/// kernel, whose integer work sets its pace (docs/benchmarks.md, sessions 16 and 20). All in
/// <see cref="HugePageMemory"/>.</summary>
public sealed record Q8Weights(ReadOnlyMemory<sbyte> Quants, ReadOnlyMemory<Half> Scales)
{
    /// <summary>The scales as float32, for the 256-bit decode kernel; empty where the CPU has AVX-512.</summary>
    public ReadOnlyMemory<float> WideScales { get; } = DecodeReadsWideScales ? Widen(Scales.Span) : default;

    /// <summary>Whether this CPU's decode kernel reads widened scales (<see cref="WideScales"/>).</summary>
    public static bool DecodeReadsWideScales => !Avx512BW.IsSupported;

    public static Q8Weights From(ReadOnlySpan<float> data)
    {
        var quants = HugePageMemory.Allocate<sbyte>(data.Length);
        var scales = HugePageMemory.Allocate<Half>(data.Length / Loading.Q8_0.BlockSize);
        Loading.Q8_0.Split(data, quants.Span, scales.Span);   // the bytes straight into their memory
        return new Q8Weights(quants, scales);
    }

    private static Memory<float> Widen(ReadOnlySpan<Half> scales)
    {
        var wide = HugePageMemory.Allocate<float>(scales.Length);
        System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(scales, wide.Span);
        return wide;
    }

    /// <summary>Row <paramref name="r"/> of <paramref name="cols"/> values, widened: d · q per block (the prefill
    /// GEMM dequantizes every row this way). The scales from <see cref="WideScales"/> where the weights hold them,
    /// else the row's halves widened at once, vectorized.</summary>
    public unsafe void Dequantize(int r, int cols, Span<float> dst)
    {
        const int B = Loading.Q8_0.BlockSize;
        int blocks = cols / B;
        scoped ReadOnlySpan<float> scales;
        if (!WideScales.IsEmpty) scales = WideScales.Span.Slice(r * blocks, blocks);
        else
        {
            Span<float> widened = blocks <= 1024 ? stackalloc float[blocks] : new float[blocks];
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(Scales.Span.Slice(r * blocks, blocks), widened);
            scales = widened;
        }
        fixed (sbyte* q = Quants.Span.Slice(r * cols, cols))
        fixed (float* y = dst)
            for (int b = 0; b < blocks; b++)
                CpuKernels.DequantizeBlockQ8(q + b * B, scales[b], y + b * B);
    }
}
