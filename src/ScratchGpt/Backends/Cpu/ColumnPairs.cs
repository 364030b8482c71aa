using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// A decode matmul of one input row, its output columns taken in pairs half a matrix apart: j and j + outDim / 2
/// for j in j0 .. j1 − 1 (and the odd last column on its own, with the block that ends at outDim / 2). A decode step
/// reads every weight once from memory, and one core fetches faster from two sequential streams far apart than from
/// one: the hardware prefetcher runs ahead on each. (Two adjacent rows, one row apart, are slower than one.) Each
/// format's pair dot product reads the two weight rows side by side, shares the loads of the input between them and
/// gives each row the bits its one-row dot product gives it; docs/benchmarks.md (session 15) has the measurements.
/// </summary>
public static class ColumnPairs
{
    /// <summary>Whether one row with weights in this format goes through pairs: every format but bfloat16 (widened a
    /// row at a time), and Q4_0 only with AVX-512: in 16 vector registers its two-row block sum spills accumulators to
    /// the stack and measured no faster than a column at a time (docs/benchmarks.md, session 15).</summary>
    public static bool Pays(WeightPrecision precision) => precision switch
    {
        WeightPrecision.BFloat16 => false,
        WeightPrecision.Q4_0 => Avx512BW.IsSupported,
        _ => true,
    };

    /// <summary>A format's dot products of the input row with weight row j, or with rows j and k together.</summary>
    public interface IRowDot
    {
        float One(int j);
        void Two(int j, int k, out float sj, out float sk);
    }

    /// <summary>y[j] = bias[j] + row · w[j] for the pairs of columns j0 .. j1 − 1 (j1 ≤ outDim / 2).</summary>
    public static void MatMul<TDot>(ref TDot dot, ReadOnlySpan<float> bias, Span<float> y, int outDim, int j0, int j1)
        where TDot : IRowDot, allows ref struct
    {
        int half = outDim / 2;
        for (int j = j0; j < j1; j++)
        {
            dot.Two(j, j + half, out float sj, out float sk);
            y[j] = sj + (bias.IsEmpty ? 0f : bias[j]);
            y[j + half] = sk + (bias.IsEmpty ? 0f : bias[j + half]);
        }
        if (j1 == half && outDim % 2 == 1) y[outDim - 1] = dot.One(outDim - 1) + (bias.IsEmpty ? 0f : bias[outDim - 1]);
    }

    /// <summary>float32 weights [outDim, inDim].</summary>
    public static void MatMul(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias, Span<float> y,
        int inDim, int outDim, int j0, int j1)
    {
        var dot = new Float32(x[..inDim], w, inDim);
        MatMul(ref dot, bias, y, outDim, j0, j1);
    }

    /// <summary>float16 weights, the input in <see cref="CpuKernels.PairForHalfDot"/> order.</summary>
    public static void MatMul(ReadOnlySpan<float> paired, Float16Weights w, ReadOnlySpan<float> bias, Span<float> y,
        int inDim, int outDim, int j0, int j1)
    {
        var dot = new Float16(paired[..inDim], w.Halves.Span, w.Scale, inDim);
        MatMul(ref dot, bias, y, outDim, j0, j1);
    }

    /// <summary>Q8_0 weights, the input quantized to Q8_0 (<see cref="CpuKernels.QuantizeQ8"/>); the scales in the
    /// form this CPU's kernel reads (<see cref="Q8Weights.DecodeReadsWideScales"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void MatMul(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q8Weights w,
        ReadOnlySpan<float> bias, Span<float> y, int inDim, int outDim, int j0, int j1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Quants.Length, (long)outDim * inDim, nameof(w));
        ArgumentOutOfRangeException.ThrowIfLessThan(xq.Length, inDim, nameof(xq));
        ArgumentOutOfRangeException.ThrowIfLessThan(xd.Length, inDim / Loading.Q8_0.BlockSize, nameof(xd));
        fixed (sbyte* qw = w.Quants.Span)
        fixed (Half* dh = w.Scales.Span)
        fixed (float* df = w.WideScales.Span)
        fixed (sbyte* qx = xq)
        fixed (float* dx = xd)
        {
            if (Q8Weights.DecodeReadsWideScales)
            {
                var dot = new Q8<float>(qw, df, qx, dx, inDim);
                MatMul(ref dot, bias, y, outDim, j0, j1);
            }
            else
            {
                var dot = new Q8<Half>(qw, dh, qx, dx, inDim);
                MatMul(ref dot, bias, y, outDim, j0, j1);
            }
        }
    }

    /// <summary>Q4_0 weights, the input in Q8_0 with its offsets (<see cref="CpuKernels.Q4Offsets"/>).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void MatMul(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, ReadOnlySpan<float> xc,
        Q4Weights w, ReadOnlySpan<float> bias, Span<float> y, int inDim, int outDim, int j0, int j1)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Codes.Length, (long)outDim * inDim / 2, nameof(w));
        ArgumentOutOfRangeException.ThrowIfLessThan(xq.Length, inDim, nameof(xq));
        ArgumentOutOfRangeException.ThrowIfLessThan(xd.Length, inDim / Loading.Q4_0.BlockSize, nameof(xd));
        ArgumentOutOfRangeException.ThrowIfLessThan(xc.Length, inDim / Loading.Q4_0.BlockSize, nameof(xc));
        fixed (byte* cw = w.Codes.Span)
        fixed (float* dw = w.Scales.Span)
        fixed (sbyte* qx = xq)
        fixed (float* dx = xd, cx = xc)
        {
            var dot = new Q4(cw, dw, qx, dx, cx, inDim);
            MatMul(ref dot, bias, y, outDim, j0, j1);
        }
    }

    private readonly ref struct Float32(ReadOnlySpan<float> x, ReadOnlySpan<float> w, int inDim) : IRowDot
    {
        private readonly ReadOnlySpan<float> x = x, w = w;

        public float One(int j) => CpuKernels.Dot(w.Slice(j * inDim, inDim), x);

        public void Two(int j, int k, out float sj, out float sk) =>
            CpuKernels.DotColumns2(w.Slice(j * inDim, inDim), w.Slice(k * inDim, inDim), x, out sj, out sk);
    }

    /// <summary>The weights are <paramref name="scale"/> times the halves (<see cref="Float16Weights"/>).</summary>
    private readonly ref struct Float16(ReadOnlySpan<float> paired, ReadOnlySpan<Half> w, float scale, int inDim)
        : IRowDot
    {
        private readonly ReadOnlySpan<float> paired = paired;
        private readonly ReadOnlySpan<Half> w = w;

        public float One(int j) => CpuKernels.DotHalfPaired(w.Slice(j * inDim, inDim), paired) * scale;

        public void Two(int j, int k, out float sj, out float sk)
        {
            CpuKernels.DotHalfPairedColumns2(w.Slice(j * inDim, inDim), w.Slice(k * inDim, inDim), paired,
                out sj, out sk, streamed: true);
            sj *= scale;
            sk *= scale;
        }
    }

    /// <summary>Q8_0: row j's bytes at qw + j · inDim, its block scales (float32 or float16) at dw + j · inDim /
    /// 32.</summary>
    private readonly unsafe struct Q8<TScale>(sbyte* qw, TScale* dw, sbyte* qx, float* dx, int inDim) : IRowDot
        where TScale : unmanaged
    {
        private int Blocks => inDim / Loading.Q8_0.BlockSize;

        public float One(int j) => CpuKernels.DotQ8(qw + (long)j * inDim, dw + (long)j * Blocks, qx, dx, Blocks);

        public void Two(int j, int k, out float sj, out float sk)
        {
            if (!QuantizedBlocks.TrySumTwoRows<QuantizedBlocks.Q8, TScale>((byte*)(qw + (long)j * inDim),
                    dw + (long)j * Blocks, (byte*)(qw + (long)k * inDim), dw + (long)k * Blocks, qx, dx, null, Blocks,
                    out sj, out sk))
                (sj, sk) = (One(j), One(k));
        }
    }

    /// <summary>Q4_0: row j's codes at cw + j · inDim / 2, its block scales at dw + j · inDim / 32.</summary>
    private readonly unsafe struct Q4(byte* cw, float* dw, sbyte* qx, float* dx, float* cx, int inDim) : IRowDot
    {
        private int Blocks => inDim / Loading.Q4_0.BlockSize;

        public float One(int j) =>
            CpuKernels.DotQ4(cw + (long)j * inDim / 2, dw + (long)j * Blocks, qx, dx, cx, Blocks);

        public void Two(int j, int k, out float sj, out float sk)
        {
            if (!QuantizedBlocks.TrySumTwoRows<QuantizedBlocks.Q4, float>(cw + (long)j * inDim / 2,
                    dw + (long)j * Blocks, cw + (long)k * inDim / 2, dw + (long)k * Blocks, qx, dx, cx, Blocks,
                    out sj, out sk))
                (sj, sk) = (One(j), One(k));
        }
    }
}
