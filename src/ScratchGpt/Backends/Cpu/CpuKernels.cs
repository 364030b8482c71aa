using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// The CPU versions of the model's kernels. They are also the reference every GPU kernel is tested
/// against, so each is written to be read first and fast second: plain loops over row-major arrays,
/// with SIMD only in the dot products that dominate the time. The Q8_0 kernels are compiled optimized at their
/// first call (AggressiveOptimization): under tiered compilation they ran as tier-0 code for many tokens on one core
/// while the runtime waited to recompile them (Q8_0 decode 3× slower).
/// </summary>
public static class CpuKernels
{
    // ---- matmul: y[r, j] = bias[j] + dot(x[r, :], w[j, :]) -------------------------------------------

    /// <summary>Up to this many rows count as a decode step (one new token for each of several sequences): every row
    /// gets exactly the dot product a single row would, so a sequence decoded in a batch gets the same bits as
    /// alone.</summary>
    public const int DecodeRows = 8;

    /// <summary>Output columns j0..j1 of the matmul, for a few rows (a decode step, or a short prompt; longer ones go
    /// through <see cref="Gemm"/>): each weight row is taken once from memory and dotted with every input row, four
    /// at a time, while it is in L1. Every row gets exactly the bits a single row would (see
    /// <see cref="DotRows4"/>).</summary>
    public static void MatMulColumns(ReadOnlySpan<float> x, ReadOnlySpan<float> w, ReadOnlySpan<float> bias,
        Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        for (int j = j0; j < j1; j++)
        {
            float b = bias.IsEmpty ? 0f : bias[j];
            var wj = w.Slice(j * inDim, inDim);
            int r = 0;
            for (; r + 4 <= rows; r += 4)
            {
                DotRows4(wj, x.Slice(r * inDim, 4 * inDim), out float s0, out float s1, out float s2, out float s3);
                y[r * outDim + j] = s0 + b; y[(r + 1) * outDim + j] = s1 + b;
                y[(r + 2) * outDim + j] = s2 + b; y[(r + 3) * outDim + j] = s3 + b;
            }
            for (; r < rows; r++) y[r * outDim + j] = Dot(wj, x.Slice(r * inDim, inDim)) + b;
        }
    }

    /// <summary>The same with float16 weights (the halves of <see cref="Float16Weights"/>: the weights are
    /// <paramref name="scale"/> times them), for more than <see cref="DecodeRows"/> rows: each weight row is widened
    /// once and reused for every input row. (A decode step goes through
    /// <see cref="MatMulColumnsHalfPaired"/>.)</summary>
    public static void MatMulColumns(ReadOnlySpan<float> x, ReadOnlySpan<Half> w, float scale,
        ReadOnlySpan<float> bias, Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        Span<float> wRow = inDim <= 4096 ? stackalloc float[inDim] : new float[inDim];
        for (int j = j0; j < j1; j++)
        {
            WidenHalf(w.Slice(j * inDim, inDim), wRow, scale);
            float b = bias.IsEmpty ? 0f : bias[j];
            for (int r = 0; r < rows; r++) y[r * outDim + j] = Dot(wRow, x.Slice(r * inDim, inDim)) + b;
        }
    }

    /// <summary>A decode step (≤ <see cref="DecodeRows"/> rows) with float16 weights: the rows come already in
    /// <see cref="PairForHalfDot"/> order (paired once per matmul, not once per block of columns) and each weight is
    /// widened inside the dot product, read once from memory as 2 bytes and used for two rows at a time. The weights
    /// are <paramref name="scale"/> (a power of two) times the halves, so each sum is scaled once.</summary>
    public static void MatMulColumnsHalfPaired(ReadOnlySpan<float> paired, ReadOnlySpan<Half> w, float scale,
        ReadOnlySpan<float> bias, Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        for (int j = j0; j < j1; j++)
        {
            float b = bias.IsEmpty ? 0f : bias[j];
            var wj = w.Slice(j * inDim, inDim);
            int r = 0;
            for (; r + 2 <= rows; r += 2)
            {
                DotHalfPairedRows2(wj, paired.Slice(r * inDim, 2 * inDim), out float s0, out float s1);
                y[r * outDim + j] = s0 * scale + b; y[(r + 1) * outDim + j] = s1 * scale + b;
            }
            if (r < rows) y[r * outDim + j] = DotHalfPaired(wj, paired.Slice(r * inDim, inDim)) * scale + b;
        }
    }

    /// <summary>The same with bfloat16 weights (the top 16 bits of a float32).</summary>
    public static void MatMulColumns(ReadOnlySpan<float> x, ReadOnlySpan<ushort> w, ReadOnlySpan<float> bias,
        Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        float[] wRow = new float[inDim];
        for (int j = j0; j < j1; j++)
        {
            Loading.DTypeConversion.BFloat16ToFloat(w.Slice(j * inDim, inDim), wRow);
            float b = bias.IsEmpty ? 0f : bias[j];
            for (int r = 0; r < rows; r++) y[r * outDim + j] = Dot(wRow, x.Slice(r * inDim, inDim)) + b;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    /// <summary>dot(w, x) with float16 w (see <see cref="DotHalfPaired"/>); reorders x on the stack first.</summary>
    public static float DotHalf(ReadOnlySpan<Half> w, ReadOnlySpan<float> x)
    {
        Span<float> paired = x.Length <= 4096 ? stackalloc float[x.Length] : new float[x.Length];
        PairForHalfDot(x, paired);
        return DotHalfPaired(w, paired);
    }

    /// <summary>x reordered per block of 16 as [x0, x2, …, x14, x1, x3, …, x15] and scaled by 2^56 (the tail as it
    /// is, unscaled): the order and scale in which <see cref="DotHalfPaired"/> uses it.</summary>
    public static void PairForHalfDot(ReadOnlySpan<float> x, Span<float> paired)
    {
        int k = PairBlocks(x, paired, 16);
        x[k..].CopyTo(paired[k..]);
    }

    /// <summary>The whole blocks of <paramref name="block"/> values of x reordered as [x0, x2, …, x1, x3, …] (the even
    /// ones, then the odd) and scaled by 2^56, as a dot product widening <paramref name="block"/> halves per register
    /// reads them; returns how many values that was.</summary>
    internal static int PairBlocks(ReadOnlySpan<float> x, Span<float> paired, int block)
    {
        int n = x.Length, half = block / 2, k = 0;
        for (; k + block <= n; k += block)
            for (int i = 0; i < half; i++)
            {
                paired[k + i] = x[k + 2 * i] * XScale;
                paired[k + half + i] = x[k + 2 * i + 1] * XScale;
            }
        return k;
    }

    // The widened weights come out as w·2^-112 (see DotHalfPaired). Rather than multiply every one by 2^112, the
    // inputs are scaled by 2^56 once per row and the finished sum by 2^56: products w·x·2^-56 stay far from float32's
    // subnormal range (and x·2^56 from overflow), and powers of two change no bits of the result.
    internal const float XScale = 72057594037927936f;   // 2^56

    /// <summary>
    /// dot(w, x) with float16 w widened in registers, x given in <see cref="PairForHalfDot"/> order and scale.
    /// Sixteen halves are read as eight 32-bit lanes: the odd halves sit in the top 16 bits, the even ones are
    /// shifted there. With a half's bits in the top of a lane, an arithmetic shift right by 3 puts exponent and
    /// mantissa at a float's positions; the mask 0x8FFFE000 keeps the sign, clears the copies of it in the exponent
    /// field's top three bits and whatever the shift brought into the low 13 bits. As a float that is the half's
    /// value × 2^-112 exactly (zeros and subnormals included): three integer ops per eight weights for the even
    /// halves, two for the odd, no multiply (the 2^112 is folded into x's 2^56 and the sum's 2^56).
    /// Inf/NaN would not survive; the loader refuses them.
    /// </summary>
    public static float DotHalfPaired(ReadOnlySpan<Half> w, ReadOnlySpan<float> x)
    {
        int n = w.Length, k = 0;
        ref uint pw = ref Unsafe.As<Half, uint>(ref MemoryMarshal.GetReference(w));
        ref float px = ref MemoryMarshal.GetReference(x);
        Vector256<float> acc0 = default, acc1 = default, acc2 = default, acc3 = default;
        var mask = Vector256.Create(unchecked((int)0x8FFFE000));
        // 32 weights per pass into four accumulators, so consecutive FMAs do not wait on each other.
        for (; k + 32 <= n; k += 32)
        {
            var u = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2)).AsInt32();
            var v = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2) + 8).AsInt32();
            acc0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask),
                Vector256.LoadUnsafe(ref px, (nuint)k), acc0);
            acc1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), Vector256.LoadUnsafe(ref px, (nuint)k + 8), acc1);
            acc2 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(v, 16), mask),
                Vector256.LoadUnsafe(ref px, (nuint)k + 16), acc2);
            acc3 = MulAdd(HalfInTopBitsToScaledFloat(v, mask), Vector256.LoadUnsafe(ref px, (nuint)k + 24), acc3);
        }
        for (; k + 16 <= n; k += 16)
        {
            var u = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2)).AsInt32();
            acc0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask),
                Vector256.LoadUnsafe(ref px, (nuint)k), acc0);
            acc1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), Vector256.LoadUnsafe(ref px, (nuint)k + 8), acc1);
        }
        float s = Vector256.Sum((acc0 + acc1) + (acc2 + acc3)) * XScale;   // (w·2^-112)·(x·2^56) summed, × 2^56
        for (; k < n; k++) s += (float)w[k] * x[k];
        return s;
    }

    /// <summary><see cref="DotHalfPaired"/> for two rows x = [x0 | x1] at once: each 32 weights are widened once and
    /// used twice. Per row the same operations in the same order, so each sum has exactly the bits of
    /// DotHalfPaired.</summary>
    public static void DotHalfPairedRows2(ReadOnlySpan<Half> w, ReadOnlySpan<float> x, out float s0, out float s1)
    {
        int n = w.Length, k = 0;
        ref uint pw = ref Unsafe.As<Half, uint>(ref MemoryMarshal.GetReference(w));
        ref float p0 = ref MemoryMarshal.GetReference(x);
        ref float p1 = ref Unsafe.Add(ref p0, n);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;   // row 0's four accumulators
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;   // row 1's
        var mask = Vector256.Create(unchecked((int)0x8FFFE000));
        for (; k + 32 <= n; k += 32)
        {
            var u = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2)).AsInt32();
            var v = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2) + 8).AsInt32();
            var w0 = HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask);
            var w1 = HalfInTopBitsToScaledFloat(u, mask);
            var w2 = HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(v, 16), mask);
            var w3 = HalfInTopBitsToScaledFloat(v, mask);
            a0 = MulAdd(w0, Vector256.LoadUnsafe(ref p0, (nuint)k), a0);
            b0 = MulAdd(w0, Vector256.LoadUnsafe(ref p1, (nuint)k), b0);
            a1 = MulAdd(w1, Vector256.LoadUnsafe(ref p0, (nuint)k + 8), a1);
            b1 = MulAdd(w1, Vector256.LoadUnsafe(ref p1, (nuint)k + 8), b1);
            a2 = MulAdd(w2, Vector256.LoadUnsafe(ref p0, (nuint)k + 16), a2);
            b2 = MulAdd(w2, Vector256.LoadUnsafe(ref p1, (nuint)k + 16), b2);
            a3 = MulAdd(w3, Vector256.LoadUnsafe(ref p0, (nuint)k + 24), a3);
            b3 = MulAdd(w3, Vector256.LoadUnsafe(ref p1, (nuint)k + 24), b3);
        }
        for (; k + 16 <= n; k += 16)
        {
            var u = Vector256.LoadUnsafe(ref pw, (nuint)(k / 2)).AsInt32();
            var w0 = HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask);
            var w1 = HalfInTopBitsToScaledFloat(u, mask);
            a0 = MulAdd(w0, Vector256.LoadUnsafe(ref p0, (nuint)k), a0);
            b0 = MulAdd(w0, Vector256.LoadUnsafe(ref p1, (nuint)k), b0);
            a1 = MulAdd(w1, Vector256.LoadUnsafe(ref p0, (nuint)k + 8), a1);
            b1 = MulAdd(w1, Vector256.LoadUnsafe(ref p1, (nuint)k + 8), b1);
        }
        s0 = Vector256.Sum((a0 + a1) + (a2 + a3)) * XScale;
        s1 = Vector256.Sum((b0 + b1) + (b2 + b3)) * XScale;
        for (; k < n; k++) { s0 += (float)w[k] * x[k]; s1 += (float)w[k] * x[n + k]; }
    }

    /// <summary><see cref="DotHalfPaired"/> of one x with two weight rows at once (wa · x and wb · x, read side by
    /// side: see <see cref="ColumnPairs"/>): each block of x is loaded once and used twice. Per row the same
    /// operations in the same order, so each sum has exactly the bits of DotHalfPaired. With
    /// <paramref name="streamed"/> (a decode matmul's weight rows, read once from memory) each pass also asks for
    /// the rows 4 KB on (<see cref="WeightPrefetch"/>); decode attention's keys, which ask for their cache
    /// themselves, pass false.</summary>
    public static void DotHalfPairedColumns2(ReadOnlySpan<Half> wa, ReadOnlySpan<Half> wb, ReadOnlySpan<float> x,
        out float sa, out float sb, bool streamed)
    {
        int n = wa.Length, k = 0;
        ref uint pa = ref Unsafe.As<Half, uint>(ref MemoryMarshal.GetReference(wa));
        ref uint pb = ref Unsafe.As<Half, uint>(ref MemoryMarshal.GetReference(wb));
        ref float px = ref MemoryMarshal.GetReference(x);
        Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default;   // wa's four accumulators
        Vector256<float> b0 = default, b1 = default, b2 = default, b3 = default;   // wb's
        var mask = Vector256.Create(unchecked((int)0x8FFFE000));
        for (; k + 32 <= n; k += 32)
        {
            if (streamed)
            {
                WeightPrefetch.Ahead(ref pa, k / 2);   // the 64 bytes of each row this pass reads, 4 KB on
                WeightPrefetch.Ahead(ref pb, k / 2);
            }
            var x0 = Vector256.LoadUnsafe(ref px, (nuint)k);
            var x1 = Vector256.LoadUnsafe(ref px, (nuint)k + 8);
            var x2 = Vector256.LoadUnsafe(ref px, (nuint)k + 16);
            var x3 = Vector256.LoadUnsafe(ref px, (nuint)k + 24);
            var u = Vector256.LoadUnsafe(ref pa, (nuint)(k / 2)).AsInt32();
            var v = Vector256.LoadUnsafe(ref pa, (nuint)(k / 2) + 8).AsInt32();
            a0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), x0, a0);
            a1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), x1, a1);
            a2 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(v, 16), mask), x2, a2);
            a3 = MulAdd(HalfInTopBitsToScaledFloat(v, mask), x3, a3);
            u = Vector256.LoadUnsafe(ref pb, (nuint)(k / 2)).AsInt32();
            v = Vector256.LoadUnsafe(ref pb, (nuint)(k / 2) + 8).AsInt32();
            b0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), x0, b0);
            b1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), x1, b1);
            b2 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(v, 16), mask), x2, b2);
            b3 = MulAdd(HalfInTopBitsToScaledFloat(v, mask), x3, b3);
        }
        for (; k + 16 <= n; k += 16)
        {
            var x0 = Vector256.LoadUnsafe(ref px, (nuint)k);
            var x1 = Vector256.LoadUnsafe(ref px, (nuint)k + 8);
            var u = Vector256.LoadUnsafe(ref pa, (nuint)(k / 2)).AsInt32();
            a0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), x0, a0);
            a1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), x1, a1);
            u = Vector256.LoadUnsafe(ref pb, (nuint)(k / 2)).AsInt32();
            b0 = MulAdd(HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), x0, b0);
            b1 = MulAdd(HalfInTopBitsToScaledFloat(u, mask), x1, b1);
        }
        sa = Vector256.Sum((a0 + a1) + (a2 + a3)) * XScale;
        sb = Vector256.Sum((b0 + b1) + (b2 + b3)) * XScale;
        for (; k < n; k++) { sa += (float)wa[k] * x[k]; sb += (float)wb[k] * x[k]; }
    }

    /// <summary>float16 → float32 (exact), eight at a time, times <paramref name="scale"/> (a power of two, the
    /// <see cref="Float16Weights.Scale"/> of scaled halves): each half zero-extended to 32 bits and shifted into the
    /// top of its lane, <see cref="HalfInTopBitsToScaledFloat"/> (the value × 2^-112), then × 2^112 · scale, a power
    /// of two, so no bits change, subnormals included. As <see cref="DotHalfPaired"/>, Inf/NaN would not survive (the
    /// loader refuses them).</summary>
    public static void WidenHalf(ReadOnlySpan<Half> h, Span<float> f, float scale = 1f)
    {
        int n = h.Length, i = 0;
        ref ushort ph = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(h));
        ref float pf = ref MemoryMarshal.GetReference(f);
        if (Avx2.IsSupported)
        {
            var mask = Vector256.Create(unchecked((int)0x8FFFE000));
            var up = Vector256.Create(TwoTo112 * scale);
            for (; i + 8 <= n; i += 8)
            {
                var lanes = Avx2.ConvertToVector256Int32(Vector128.LoadUnsafe(ref ph, (nuint)i));   // zero-extended
                var scaled = HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(lanes, 16), mask);
                (scaled * up).StoreUnsafe(ref pf, (nuint)i);
            }
        }
        for (; i < n; i++) f[i] = (float)h[i] * scale;
    }

    internal static readonly float TwoTo112 = MathF.ScaleB(1f, 112);

    /// <summary>The half in the top 16 bits of each lane as a float × 2^-112 (low bits ignored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> HalfInTopBitsToScaledFloat(Vector256<int> v, Vector256<int> mask) =>
        (Vector256.ShiftRightArithmetic(v, 3) & mask).AsSingle();

    public static float Dot(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        int n = a.Length, k = 0;
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        var acc0 = Vector256<float>.Zero; var acc1 = Vector256<float>.Zero;
        for (; k + 16 <= n; k += 16)
        {
            acc0 = MulAdd(Vector256.LoadUnsafe(ref pa, (nuint)k), Vector256.LoadUnsafe(ref pb, (nuint)k), acc0);
            acc1 = MulAdd(Vector256.LoadUnsafe(ref pa, (nuint)k + 8), Vector256.LoadUnsafe(ref pb, (nuint)k + 8), acc1);
        }
        float s = Vector256.Sum(acc0 + acc1);
        for (; k < n; k++) s += a[k] * b[k];
        return s;
    }

    /// <summary><see cref="Dot"/> of one x with two weight rows at once (wa · x and wb · x, read side by side: see
    /// <see cref="ColumnPairs"/>): each block of x is loaded once and used twice. Per row the same operations in the
    /// same order, so each sum has exactly the bits of Dot.</summary>
    public static void DotColumns2(ReadOnlySpan<float> wa, ReadOnlySpan<float> wb, ReadOnlySpan<float> x,
        out float sa, out float sb)
    {
        int n = wa.Length, k = 0;
        ref float pa = ref MemoryMarshal.GetReference(wa);
        ref float pb = ref MemoryMarshal.GetReference(wb);
        ref float px = ref MemoryMarshal.GetReference(x);
        Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default;
        for (; k + 16 <= n; k += 16)
        {
            WeightPrefetch.Ahead(ref pa, k);   // the 64 bytes of each row this pass reads, 4 KB on
            WeightPrefetch.Ahead(ref pb, k);
            var x0 = Vector256.LoadUnsafe(ref px, (nuint)k);
            var x1 = Vector256.LoadUnsafe(ref px, (nuint)k + 8);
            a0 = MulAdd(Vector256.LoadUnsafe(ref pa, (nuint)k), x0, a0);
            a1 = MulAdd(Vector256.LoadUnsafe(ref pa, (nuint)k + 8), x1, a1);
            b0 = MulAdd(Vector256.LoadUnsafe(ref pb, (nuint)k), x0, b0);
            b1 = MulAdd(Vector256.LoadUnsafe(ref pb, (nuint)k + 8), x1, b1);
        }
        sa = Vector256.Sum(a0 + a1);
        sb = Vector256.Sum(b0 + b1);
        for (; k < n; k++) { sa += wa[k] * x[k]; sb += wb[k] * x[k]; }
    }

    /// <summary><see cref="Dot"/> of w with four rows x = [x0 | x1 | x2 | x3] at once: each 16 weights are loaded once
    /// and used four times. Per row the same operations in the same order, so each sum has exactly the bits of
    /// Dot.</summary>
    public static void DotRows4(ReadOnlySpan<float> w, ReadOnlySpan<float> x, out float s0, out float s1, out float s2,
        out float s3)
    {
        int n = w.Length, k = 0;
        ref float pw = ref MemoryMarshal.GetReference(w);
        ref float p0 = ref MemoryMarshal.GetReference(x);
        ref float p1 = ref Unsafe.Add(ref p0, n);
        ref float p2 = ref Unsafe.Add(ref p0, 2 * n);
        ref float p3 = ref Unsafe.Add(ref p0, 3 * n);
        Vector256<float> a0 = default, b0 = default, c0 = default, d0 = default;   // lanes k..k+7 of rows 0..3
        Vector256<float> a1 = default, b1 = default, c1 = default, d1 = default;   // lanes k+8..k+15
        for (; k + 16 <= n; k += 16)
        {
            var lo = Vector256.LoadUnsafe(ref pw, (nuint)k);
            var hi = Vector256.LoadUnsafe(ref pw, (nuint)k + 8);
            a0 = MulAdd(lo, Vector256.LoadUnsafe(ref p0, (nuint)k), a0);
            a1 = MulAdd(hi, Vector256.LoadUnsafe(ref p0, (nuint)k + 8), a1);
            b0 = MulAdd(lo, Vector256.LoadUnsafe(ref p1, (nuint)k), b0);
            b1 = MulAdd(hi, Vector256.LoadUnsafe(ref p1, (nuint)k + 8), b1);
            c0 = MulAdd(lo, Vector256.LoadUnsafe(ref p2, (nuint)k), c0);
            c1 = MulAdd(hi, Vector256.LoadUnsafe(ref p2, (nuint)k + 8), c1);
            d0 = MulAdd(lo, Vector256.LoadUnsafe(ref p3, (nuint)k), d0);
            d1 = MulAdd(hi, Vector256.LoadUnsafe(ref p3, (nuint)k + 8), d1);
        }
        s0 = Vector256.Sum(a0 + a1);
        s1 = Vector256.Sum(b0 + b1);
        s2 = Vector256.Sum(c0 + c1);
        s3 = Vector256.Sum(d0 + d1);
        for (; k < n; k++)
        {
            s0 += w[k] * x[k];
            s1 += w[k] * x[n + k];
            s2 += w[k] * x[2 * n + k];
            s3 += w[k] * x[3 * n + k];
        }
    }

    /// <summary>y[r, j] = bias[j] + Σ_k x[r, k] · w[j, k] for columns j0..j1 with Q8_0 weights and the input rows
    /// quantized to Q8_0 too (<see cref="QuantizeQ8"/>; see <see cref="DotQ8"/>), the weights' scales in the form
    /// this CPU's kernel reads (<see cref="Q8Weights.DecodeReadsWideScales"/>). The arrays are pinned once for all
    /// the columns: a 768-wide row is only 24 blocks, so per-row set-up is a visible share of its time.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void MatMulColumnsQ8(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q8Weights w,
        ReadOnlySpan<float> bias, Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        int blocksPerRow = inDim / Loading.Q8_0.BlockSize;
        if (j1 <= j0) return;
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Quants.Length, (long)j1 * inDim, nameof(w));
        ArgumentOutOfRangeException.ThrowIfLessThan(xq.Length, rows * inDim, nameof(xq));
        ArgumentOutOfRangeException.ThrowIfLessThan(xd.Length, rows * blocksPerRow, nameof(xd));
        fixed (sbyte* qw = w.Quants.Span)
        fixed (Half* dh = w.Scales.Span)
        fixed (float* df = w.WideScales.Span)
        fixed (sbyte* qx = xq)
        fixed (float* dx = xd)
        {
            if (Q8Weights.DecodeReadsWideScales) ColumnsQ8(qw, df, qx, dx, bias, y, rows, inDim, outDim, j0, j1);
            else ColumnsQ8(qw, dh, qx, dx, bias, y, rows, inDim, outDim, j0, j1);
        }
    }

    private static unsafe void ColumnsQ8<TScale>(sbyte* qw, TScale* dw, sbyte* qx, float* dx, ReadOnlySpan<float> bias,
        Span<float> y, int rows, int inDim, int outDim, int j0, int j1) where TScale : unmanaged
    {
        int blocksPerRow = inDim / Loading.Q8_0.BlockSize;
        for (int j = j0; j < j1; j++)
        {
            float b = bias.Length > 0 ? bias[j] : 0f;
            for (int r = 0; r < rows; r++)
                y[r * outDim + j] = b + DotQ8(qw + (long)j * inDim, dw + (long)j * blocksPerRow,
                    qx + r * inDim, dx + r * blocksPerRow, blocksPerRow);
        }
    }

    /// <summary>Rows of activations as Q8_0, the way llama.cpp quantizes a matmul's input for Q8_0 weights: per block
    /// of 32, d = max|x| / 127 (kept as float32 here) and q = round(x / d), halves to even. The error per value is at
    /// most d / 2, the same relative size as the weights' own.</summary>
    public static void QuantizeQ8(ReadOnlySpan<float> x, Span<sbyte> q, Span<float> d)
    {
        const int B = Loading.Q8_0.BlockSize;
        for (int b = 0; b < x.Length / B; b++)
        {
            var v = x.Slice(b * B, B);
            float scale = Q8Scale(v), inverse = scale != 0 ? 1f / scale : 0f;
            d[b] = scale;
            if (Vector256.IsHardwareAccelerated)
            {
                var i0 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(v) * inverse));
                var i1 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(v[8..]) * inverse));
                var i2 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(v[16..]) * inverse));
                var i3 = Vector256.ConvertToInt32(Vector256.Round(Vector256.Create(v[24..]) * inverse));
                // |q| ≤ 127, so narrowing 32 → 16 → 8 bits keeps every value
                Vector256.Narrow(Vector256.Narrow(i0, i1), Vector256.Narrow(i2, i3)).CopyTo(q.Slice(b * B, B));
            }
            else
                for (int i = 0; i < B; i++) q[b * B + i] = (sbyte)MathF.Round(v[i] * inverse);
        }
    }

    /// <summary>x as <see cref="QuantizeQ8"/> leaves it, back in float32: d · q per block (the input of the prefill
    /// GEMM with Q8_0 weights, so that prefill and decode compute the same model).</summary>
    public static unsafe void RoundTripQ8(ReadOnlySpan<float> x, Span<float> y)
    {
        const int B = Loading.Q8_0.BlockSize;
        sbyte[] q = System.Buffers.ArrayPool<sbyte>.Shared.Rent(x.Length);
        float[] d = System.Buffers.ArrayPool<float>.Shared.Rent(x.Length / B);
        QuantizeQ8(x, q, d);
        fixed (sbyte* qp = q)
        fixed (float* yp = y)
            for (int b = 0; b < x.Length / B; b++) DequantizeBlockQ8(qp + b * B, d[b], yp + b * B);
        System.Buffers.ArrayPool<sbyte>.Shared.Return(q);
        System.Buffers.ArrayPool<float>.Shared.Return(d);
    }

    /// <summary>max|v| / 127 over one block of 32.</summary>
    private static float Q8Scale(ReadOnlySpan<float> v)
    {
        if (!Vector256.IsHardwareAccelerated)
        {
            float m = 0;
            foreach (float f in v) m = MathF.Max(m, MathF.Abs(f));
            return m / 127f;
        }
        var a = Vector256.Max(
            Vector256.Max(Vector256.Abs(Vector256.Create(v)), Vector256.Abs(Vector256.Create(v[8..]))),
            Vector256.Max(Vector256.Abs(Vector256.Create(v[16..])), Vector256.Abs(Vector256.Create(v[24..]))));
        var h = Vector128.Max(a.GetLower(), a.GetUpper());
        return MathF.Max(MathF.Max(h[0], h[1]), MathF.Max(h[2], h[3])) / 127f;
    }

    /// <summary>
    /// Σ_b dw[b] · dx[b] · Σ_{k in block b} qw[k] · qx[k], with both the weights and the input in Q8_0. A block's 32
    /// products and their sum are exact integers, so a block costs a few integer instructions on 32 bytes, one
    /// conversion and one multiply-add (the block product: <see cref="QuantizedBlocks.Q8"/>). Reads 34 bytes per 32
    /// weights (36 where the scales are read widened, <see cref="Q8Weights"/>), where float16 reads 64 and float32
    /// 128. With AVX-512 two blocks go through each instruction (<see cref="DotQ8Avx512{TScale}"/>), otherwise one
    /// (<see cref="DotQ8Avx2{TScale}"/>); the block sums are the same integers either way, only the order of the
    /// float sums differs.
    /// </summary>
    public static unsafe float DotQ8(ReadOnlySpan<sbyte> qw, ReadOnlySpan<Half> dw, ReadOnlySpan<sbyte> qx,
        ReadOnlySpan<float> dx)
    {
        int blocks = dw.Length;
        ArgumentOutOfRangeException.ThrowIfLessThan(qw.Length, blocks * Loading.Q8_0.BlockSize, nameof(qw));
        ArgumentOutOfRangeException.ThrowIfLessThan(qx.Length, blocks * Loading.Q8_0.BlockSize, nameof(qx));
        ArgumentOutOfRangeException.ThrowIfLessThan(dx.Length, blocks, nameof(dx));
        fixed (sbyte* wp = qw)
        fixed (sbyte* xp = qx)
        fixed (Half* wd = dw)
        fixed (float* xd = dx)
            return DotQ8(wp, wd, xp, xd, blocks);
    }

    /// <summary><see cref="DotQ8"/> with this CPU's widest form, the weights' scales float16 or float32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float DotQ8<TScale>(sbyte* wp, TScale* wd, sbyte* xp, float* xd, int blocks)
        where TScale : unmanaged =>
        Avx512BW.IsSupported ? DotQ8Avx512(wp, wd, xp, xd, blocks)
        : Avx2.IsSupported && Fma.IsSupported ? DotQ8Avx2(wp, wd, xp, xd, blocks)
        : DotQ8Scalar(wp, wd, xp, xd, blocks);

    /// <summary><see cref="DotQ8"/> with 512-bit vectors, two blocks per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float DotQ8Avx512<TScale>(sbyte* wp, TScale* wd, sbyte* xp, float* xd, int blocks)
        where TScale : unmanaged =>
        QuantizedBlocks.Sum512<QuantizedBlocks.Q8, TScale>((byte*)wp, wd, xp, xd, null, blocks);

    /// <summary><see cref="DotQ8"/> with 256-bit vectors, one block per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float DotQ8Avx2<TScale>(sbyte* wp, TScale* wd, sbyte* xp, float* xd, int blocks)
        where TScale : unmanaged =>
        QuantizedBlocks.Sum256<QuantizedBlocks.Q8, TScale>((byte*)wp, wd, xp, xd, null, blocks);

    /// <summary><see cref="DotQ8"/> one product at a time, for CPUs without AVX2.</summary>
    internal static unsafe float DotQ8Scalar<TScale>(sbyte* wp, TScale* wd, sbyte* xp, float* xd, int blocks)
        where TScale : unmanaged
    {
        const int B = Loading.Q8_0.BlockSize;
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int block = 0;
            for (int i = b * B; i < (b + 1) * B; i++) block += wp[i] * xp[i];
            sum += QuantizedBlocks.OneScale(wd + b) * xd[b] * block;
        }
        return sum;
    }

    /// <summary>c[b] = 8 · dx[b] · Σ_{k in block b} qx[k] for input rows in Q8_0: what the offset of Q4_0's codes
    /// (q − 8) takes from each block's product (see <see cref="DotQ4"/>).</summary>
    public static void Q4Offsets(ReadOnlySpan<sbyte> qx, ReadOnlySpan<float> dx, Span<float> c)
    {
        const int B = Loading.Q8_0.BlockSize;
        for (int b = 0; b < qx.Length / B; b++)
        {
            int sum = 0;
            foreach (sbyte q in qx.Slice(b * B, B)) sum += q;
            c[b] = 8 * dx[b] * sum;
        }
    }

    /// <summary>y[r, j] = bias[j] + Σ_k x[r, k] · w[j, k] for columns j0..j1 with Q4_0 weights, the input rows in
    /// Q8_0 with their offsets (<see cref="Q4Offsets"/>); pinned once for all the columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static unsafe void MatMulColumnsQ4(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, ReadOnlySpan<float> xc,
        Q4Weights w, ReadOnlySpan<float> bias, Span<float> y, int rows, int inDim, int outDim, int j0, int j1)
    {
        int blocksPerRow = inDim / Loading.Q4_0.BlockSize;
        if (j1 <= j0) return;
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Codes.Length, (long)j1 * inDim / 2, nameof(w));
        ArgumentOutOfRangeException.ThrowIfLessThan(xq.Length, rows * inDim, nameof(xq));
        ArgumentOutOfRangeException.ThrowIfLessThan(xd.Length, rows * blocksPerRow, nameof(xd));
        ArgumentOutOfRangeException.ThrowIfLessThan(xc.Length, rows * blocksPerRow, nameof(xc));
        fixed (byte* cw = w.Codes.Span)
        fixed (float* dw = w.Scales.Span)
        fixed (sbyte* qx = xq)
        fixed (float* dx = xd, cx = xc)
            for (int j = j0; j < j1; j++)
            {
                float b = bias.Length > 0 ? bias[j] : 0f;
                for (int r = 0; r < rows; r++)
                    y[r * outDim + j] = b + DotQ4(cw + (long)j * inDim / 2, dw + (long)j * blocksPerRow,
                        qx + r * inDim, dx + r * blocksPerRow, cx + r * blocksPerRow, blocksPerRow);
            }
    }

    /// <summary>
    /// Σ_b dw[b] · (dx[b] · Σ_{k in block b} q[k] · qx[k] − c[b]) with Q4_0 weights (codes q in 0..15, the weight
    /// being dw · (q − 8)) and the input in Q8_0 with c from <see cref="Q4Offsets"/>: Σ (q − 8) · qx is
    /// Σ q · qx − 8 · Σ qx, so the blocks are summed as Q8_0's are with the codes as they are
    /// (<see cref="QuantizedBlocks.Q4"/>), and Σ_b dw[b] · c[b] is subtracted at the end (one FMA per eight blocks).
    /// Reads 20 bytes per 32 weights (16 of codes, the scale widened to float32: <see cref="Q4Weights"/>).
    /// </summary>
    public static unsafe float DotQ4(ReadOnlySpan<byte> codes, ReadOnlySpan<float> dw, ReadOnlySpan<sbyte> qx,
        ReadOnlySpan<float> dx, ReadOnlySpan<float> c)
    {
        int blocks = dw.Length;
        ArgumentOutOfRangeException.ThrowIfLessThan(codes.Length, blocks * Loading.Q4_0.BlockSize / 2, nameof(codes));
        ArgumentOutOfRangeException.ThrowIfLessThan(qx.Length, blocks * Loading.Q4_0.BlockSize, nameof(qx));
        ArgumentOutOfRangeException.ThrowIfLessThan(dx.Length, blocks, nameof(dx));
        ArgumentOutOfRangeException.ThrowIfLessThan(c.Length, blocks, nameof(c));
        fixed (byte* wp = codes)
        fixed (sbyte* xp = qx)
        fixed (float* wd = dw, xd = dx, xc = c)
            return DotQ4(wp, wd, xp, xd, xc, blocks);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe float DotQ4(byte* wp, float* wd, sbyte* xp, float* xd, float* xc, int blocks) =>
        Avx512BW.IsSupported ? DotQ4Avx512(wp, wd, xp, xd, xc, blocks)
        : Avx2.IsSupported && Fma.IsSupported ? DotQ4Avx2(wp, wd, xp, xd, xc, blocks)
        : DotQ4Scalar(wp, wd, xp, xd, xc, blocks);

    /// <summary><see cref="DotQ4"/> with 512-bit vectors, two blocks per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float DotQ4Avx512(byte* wp, float* wd, sbyte* xp, float* xd, float* xc, int blocks) =>
        QuantizedBlocks.Sum512<QuantizedBlocks.Q4, float>(wp, wd, xp, xd, xc, blocks);

    /// <summary><see cref="DotQ4"/> with 256-bit vectors, one block per instruction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static unsafe float DotQ4Avx2(byte* wp, float* wd, sbyte* xp, float* xd, float* xc, int blocks) =>
        QuantizedBlocks.Sum256<QuantizedBlocks.Q4, float>(wp, wd, xp, xd, xc, blocks);

    /// <summary><see cref="DotQ4"/> one product at a time, for CPUs without AVX2.</summary>
    internal static unsafe float DotQ4Scalar(byte* wp, float* wd, sbyte* xp, float* xd, float* xc, int blocks)
    {
        const int B = Loading.Q4_0.BlockSize;
        float sum = 0;
        for (int b = 0; b < blocks; b++)
        {
            int block = 0;
            for (int j = 0; j < B / 2; j++)
            {
                byte pair = wp[b * B / 2 + j];
                block += (pair & 0x0F) * xp[b * B + j] + (pair >> 4) * xp[b * B + j + B / 2];
            }
            sum += wd[b] * xd[b] * block - wd[b] * xc[b];
        }
        return sum;
    }

    /// <summary>y = d · q for one Q8_0 block of 32, eight at a time (the signed bytes widened to floats).</summary>
    internal static unsafe void DequantizeBlockQ8(sbyte* q, float d, float* y)
    {
        const int B = Loading.Q8_0.BlockSize;
        if (Avx2.IsSupported)
        {
            var dv = Vector256.Create(d);
            for (int i = 0; i < B; i += 8)
                Avx.Store(y + i, Avx.Multiply(dv, Avx.ConvertToVector256Single(Avx2.ConvertToVector256Int32(q + i))));
        }
        else
            for (int i = 0; i < B; i++) y[i] = d * q[i];
    }

    // ---- element-wise and per-row kernels ----------------------------------------------------------

    public static void Embedding(ReadOnlySpan<int> ids, int startPosition, ReadOnlySpan<float> wte,
        ReadOnlySpan<float> wpe, Span<float> x, int dim)
    {
        for (int t = 0; t < ids.Length; t++)
            for (int i = 0; i < dim; i++)
                x[t * dim + i] = wte[ids[t] * dim + i] + wpe[(startPosition + t) * dim + i];
    }

    /// <summary>y = (x − mean) / √(var + eps) · γ + β per row, var the biased variance (as torch's layer_norm),
    /// computed from the centred values in a second pass (no E[x²] − mean² cancellation). Eight lanes at a
    /// time.</summary>
    public static void LayerNorm(ReadOnlySpan<float> x, ReadOnlySpan<float> gamma, ReadOnlySpan<float> beta,
        Span<float> y, int rows, int dim, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            var row = x.Slice(r * dim, dim);
            var output = y.Slice(r * dim, dim);
            float mean = System.Numerics.Tensors.TensorPrimitives.Sum(row) / dim;
            float rstd = 1f / MathF.Sqrt(SumOfSquaredDeviations(row, mean) / dim + eps);
            int i = 0;
            if (Vector256.IsHardwareAccelerated)
            {
                Vector256<float> m = Vector256.Create(mean), s = Vector256.Create(rstd);
                for (; i + 8 <= dim; i += 8)
                    ((Vector256.Create(row[i..]) - m) * s * Vector256.Create(gamma[i..]) + Vector256.Create(beta[i..]))
                        .CopyTo(output[i..]);
            }
            for (; i < dim; i++) output[i] = (row[i] - mean) * rstd * gamma[i] + beta[i];
        }
    }

    /// <summary>Σ (x − mean)².</summary>
    private static float SumOfSquaredDeviations(ReadOnlySpan<float> x, float mean)
    {
        int i = 0;
        float sum = 0;
        if (Vector256.IsHardwareAccelerated)
        {
            Vector256<float> m = Vector256.Create(mean), acc = default;
            for (; i + 8 <= x.Length; i += 8)
            {
                var d = Vector256.Create(x[i..]) - m;
                acc += d * d;
            }
            sum = Vector256.Sum(acc);
        }
        for (; i < x.Length; i++) sum += (x[i] - mean) * (x[i] - mean);
        return sum;
    }

    /// <summary>gelu_new: 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))).</summary>
    public static float Gelu(float x) => 0.5f * x * (1f + MathF.Tanh(GeluTanhArgument(x)));

    /// <summary>The argument of gelu_new's tanh: √(2/π) (x + 0.044715 x³).</summary>
    private static float GeluTanhArgument(float x) => 0.7978845608028654f * (x + 0.044715f * x * x * x);

    /// <summary>The same, eight at a time, the operations in the same order (so the same bits).</summary>
    private static Vector256<float> GeluTanhArgument(Vector256<float> x) =>
        0.7978845608028654f * (x + 0.044715f * x * x * x);

    /// <summary>gelu_new over a span, 256 values at a time: the cubic in one pass, tanh by TensorPrimitives
    /// (vectorised; a scalar MathF.Tanh per value cost more than the matmuls around it), then 0.5·x·(1 + t).</summary>
    public static void Gelu(Span<float> x)
    {
        Span<float> t = stackalloc float[256];
        for (int i0 = 0; i0 < x.Length; i0 += t.Length)
        {
            var xs = x.Slice(i0, Math.Min(t.Length, x.Length - i0));
            var ts = t[..xs.Length];
            int i = 0;
            // eight at a time, the scalar expressions' operations in their order (so the same bits)
            for (; Vector256.IsHardwareAccelerated && i + 8 <= xs.Length; i += 8)
                GeluTanhArgument(Vector256.Create(xs[i..])).CopyTo(ts[i..]);
            for (; i < xs.Length; i++) ts[i] = GeluTanhArgument(xs[i]);
            System.Numerics.Tensors.TensorPrimitives.Tanh(ts, ts);
            for (i = 0; Vector256.IsHardwareAccelerated && i + 8 <= xs.Length; i += 8)
                (0.5f * Vector256.Create(xs[i..]) * (Vector256<float>.One + Vector256.Create(ts[i..]))).CopyTo(xs[i..]);
            for (; i < xs.Length; i++) xs[i] = 0.5f * xs[i] * (1f + ts[i]);
        }
    }

    public static void Add(Span<float> x, ReadOnlySpan<float> y) =>
        System.Numerics.Tensors.TensorPrimitives.Add(x, y, x);

    /// <summary>Softmax in place, with the max subtracted first so exp never overflows (vectorised exp and
    /// sum).</summary>
    public static void Softmax(Span<float> x)
    {
        float max = System.Numerics.Tensors.TensorPrimitives.Max(x);
        System.Numerics.Tensors.TensorPrimitives.Subtract(x, max, x);
        System.Numerics.Tensors.TensorPrimitives.Exp(x, x);
        float sum = System.Numerics.Tensors.TensorPrimitives.Sum(x);
        System.Numerics.Tensors.TensorPrimitives.Divide(x, sum, x);
    }

    /// <summary>y = Σ_t w[t] · v[t, :] for v [w.Length, y.Length], positions in order for every output. 64 outputs at
    /// a time stay in eight registers while the rows of v stream past, so y is written once (not loaded and stored at
    /// every position); the same FMAs in the same order as accumulating in memory, so the same bits.</summary>
    internal static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<float> v, Span<float> y)
    {
        int n = y.Length, d = 0;
        ref float pv = ref MemoryMarshal.GetReference(v);
        ref float py = ref MemoryMarshal.GetReference(y);
        for (; d + 64 <= n; d += 64)
        {
            Vector256<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default,
                a6 = default, a7 = default;
            for (int t = 0; t < w.Length; t++)
            {
                var wt = Vector256.Create(w[t]);
                nuint row = (nuint)(t * n + d);
                a0 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row), a0);
                a1 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 8), a1);
                a2 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 16), a2);
                a3 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 24), a3);
                a4 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 32), a4);
                a5 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 40), a5);
                a6 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 48), a6);
                a7 = MulAdd(wt, Vector256.LoadUnsafe(ref pv, row + 56), a7);
            }
            nuint o = (nuint)d;
            a0.StoreUnsafe(ref py, o);
            a1.StoreUnsafe(ref py, o + 8);
            a2.StoreUnsafe(ref py, o + 16);
            a3.StoreUnsafe(ref py, o + 24);
            a4.StoreUnsafe(ref py, o + 32);
            a5.StoreUnsafe(ref py, o + 40);
            a6.StoreUnsafe(ref py, o + 48);
            a7.StoreUnsafe(ref py, o + 56);
        }
        for (; d + 8 <= n; d += 8)
        {
            Vector256<float> acc = default;
            for (int t = 0; t < w.Length; t++)
                acc = MulAdd(Vector256.Create(w[t]), Vector256.LoadUnsafe(ref pv, (nuint)(t * n + d)), acc);
            acc.StoreUnsafe(ref py, (nuint)d);
        }
        for (; d < n; d++)
        {
            float sum = 0f;
            for (int t = 0; t < w.Length; t++) sum += w[t] * v[t * n + d];
            y[d] = sum;
        }
    }

    /// <summary><see cref="WeightedSum"/> over float16 rows of v (row t at t · <paramref name="stride"/>), widened in
    /// registers as <see cref="DotHalfPaired"/> widens weights: sixteen halves read as eight 32-bit lanes come out as
    /// the even outputs' values and the odd ones', each × 2^-112. So each w[t] (≤ 1, a softmax weight) is taken ×
    /// 2^112, which changes no bits of the products, and the even and odd sums are interleaved once at the
    /// end.</summary>
    internal static void WeightedSumHalf(ReadOnlySpan<float> w, ReadOnlySpan<Half> v, int stride, Span<float> y)
    {
        int n = y.Length, d = 0;
        ref ushort pv = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(v));
        var mask = Vector256.Create(unchecked((int)0x8FFFE000));
        for (; d + 64 <= n; d += 64)   // 64 outputs in eight registers
        {
            Vector256<float> e0 = default, o0 = default, e1 = default, o1 = default, e2 = default, o2 = default,
                e3 = default, o3 = default;
            for (int t = 0; t < w.Length; t++)
            {
                var wt = Vector256.Create(w[t] * TwoTo112);
                ref uint row = ref Unsafe.As<ushort, uint>(ref Unsafe.Add(ref pv, t * stride + d));
                var u = Vector256.LoadUnsafe(ref row).AsInt32();
                e0 = MulAdd(wt, HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), e0);
                o0 = MulAdd(wt, HalfInTopBitsToScaledFloat(u, mask), o0);
                u = Vector256.LoadUnsafe(ref row, 8).AsInt32();
                e1 = MulAdd(wt, HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), e1);
                o1 = MulAdd(wt, HalfInTopBitsToScaledFloat(u, mask), o1);
                u = Vector256.LoadUnsafe(ref row, 16).AsInt32();
                e2 = MulAdd(wt, HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), e2);
                o2 = MulAdd(wt, HalfInTopBitsToScaledFloat(u, mask), o2);
                u = Vector256.LoadUnsafe(ref row, 24).AsInt32();
                e3 = MulAdd(wt, HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), e3);
                o3 = MulAdd(wt, HalfInTopBitsToScaledFloat(u, mask), o3);
            }
            Interleave(e0, o0, y.Slice(d, 16));
            Interleave(e1, o1, y.Slice(d + 16, 16));
            Interleave(e2, o2, y.Slice(d + 32, 16));
            Interleave(e3, o3, y.Slice(d + 48, 16));
        }
        for (; d + 16 <= n; d += 16)
        {
            Vector256<float> e = default, o = default;
            for (int t = 0; t < w.Length; t++)
            {
                var wt = Vector256.Create(w[t] * TwoTo112);
                var u = Vector256.LoadUnsafe(ref Unsafe.As<ushort, uint>(ref Unsafe.Add(ref pv, t * stride + d)))
                    .AsInt32();
                e = MulAdd(wt, HalfInTopBitsToScaledFloat(Vector256.ShiftLeft(u, 16), mask), e);
                o = MulAdd(wt, HalfInTopBitsToScaledFloat(u, mask), o);
            }
            Interleave(e, o, y.Slice(d, 16));
        }
        for (; d < n; d++)
        {
            float sum = 0f;
            for (int t = 0; t < w.Length; t++) sum += w[t] * (float)v[t * stride + d];
            y[d] = sum;
        }
    }

    /// <summary>y16 = [even[0], odd[0], even[1], odd[1], …]: the even and odd outputs of a widened row back in
    /// order.</summary>
    internal static void Interleave(Vector256<float> even, Vector256<float> odd, Span<float> y16)
    {
        if (Avx.IsSupported)
        {
            var lo = Avx.UnpackLow(even, odd);    // e0 o0 e1 o1 | e4 o4 e5 o5
            var hi = Avx.UnpackHigh(even, odd);   // e2 o2 e3 o3 | e6 o6 e7 o7
            Avx.Permute2x128(lo, hi, 0x20).CopyTo(y16);
            Avx.Permute2x128(lo, hi, 0x31).CopyTo(y16[8..]);
            return;
        }
        for (int i = 0; i < 8; i++) { y16[2 * i] = even[i]; y16[2 * i + 1] = odd[i]; }
    }

    /// <summary>
    /// One head of causal attention for the new rows (see <see cref="IBackend.Attention"/>) over a float32 cache:
    /// scores over positions 0..p, softmax, weighted sum of v. The cache already holds k and v; <paramref name="kh"/>
    /// and <paramref name="vh"/> are this head's [past + rows, headDim] blocks of it (the cache is head-major). Rows go
    /// four at a time where they can (a prompt): each key row is loaded once for the four rows' scores
    /// (<see cref="DotRows4"/>, the same bits as a Dot per row); the rest one at a time
    /// (<see cref="AttentionRows{T, TRows}"/>). <paramref name="scores"/> holds min(rows, 4) × (past + rows).
    /// </summary>
    public static void AttentionHead(ReadOnlySpan<float> qkv, ReadOnlySpan<float> kh, ReadOnlySpan<float> vh,
        Span<float> y, Span<float> probs, int rows, int past, int nHead, int headDim, int h, Span<float> scores)
    {
        int E = nHead * headDim, total = past + rows, D = headDim;
        float scale = MathF.Sqrt(headDim);
        Span<float> q4 = D <= 256 ? stackalloc float[4 * D] : new float[4 * D];
        int r0 = 0;
        for (; r0 + 4 <= rows; r0 += 4)
        {
            // four queries side by side
            for (int i = 0; i < 4; i++) qkv.Slice((r0 + i) * 3 * E + h * D, D).CopyTo(q4.Slice(i * D, D));
            int shared = past + r0;   // positions 0..shared are visible to all four rows
            for (int t = 0; t <= shared; t++)
            {
                DotRows4(kh.Slice(t * D, D), q4, out float s0, out float s1, out float s2, out float s3);
                scores[t] = s0 / scale;
                scores[total + t] = s1 / scale;
                scores[2 * total + t] = s2 / scale;
                scores[3 * total + t] = s3 / scale;
            }
            for (int i = 1; i < 4; i++)
                for (int t = shared + 1; t <= shared + i; t++)
                    scores[i * total + t] = Dot(q4.Slice(i * D, D), kh.Slice(t * D, D)) / scale;
            for (int i = 0; i < 4; i++)
                FinishRow<float, Float32CacheRows>(scores.Slice(i * total, shared + i + 1), vh,
                    y.Slice((r0 + i) * E + h * D, D),
                    probs.IsEmpty ? probs : probs.Slice((h * rows + r0 + i) * total, total));
        }
        AttentionRows<float, Float32CacheRows>(qkv, kh, vh, y, probs, rows, past, nHead, headDim, h, scores, r0);
    }

    /// <summary>
    /// Rows <paramref name="r0"/> .. rows − 1 of one head's attention one at a time (a decode step's row), over this
    /// head's blocks of a float32 or a float16 cache (<typeparamref name="TRows"/> reads them). Arguments as
    /// <see cref="AttentionHead"/>'s.
    /// </summary>
    internal static void AttentionRows<T, TRows>(ReadOnlySpan<float> qkv, ReadOnlySpan<T> kh, ReadOnlySpan<T> vh,
        Span<float> y, Span<float> probs, int rows, int past, int nHead, int headDim, int h, Span<float> scores,
        int r0 = 0)
        where T : unmanaged where TRows : ICacheRows<T>
    {
        int E = nHead * headDim, total = past + rows, D = headDim;
        float scale = MathF.Sqrt(headDim);
        Span<float> q = D <= 256 ? stackalloc float[D] : new float[D];
        for (int r = r0; r < rows; r++)
        {
            int p = past + r;
            var w = scores[..(p + 1)];
            TRows.PrepareQuery(qkv.Slice(r * 3 * E + h * D, D), q);
            ReadOnlySpan<T> keys = kh[..((p + 1) * D)], values = vh[..((p + 1) * D)];
            // four keys at a time (adjacent rows of the cache): eight independent FMA chains instead of two, and
            // per key the same operations as a single dot, so the same bits
            int t = 0;
            for (; t + 4 <= p + 1; t += 4)
            {
                // In a decode step the cache comes from memory (a token's weights passed through the caches since
                // the last step), and one stream of key rows arrives at ~15 GB/s on one core. Asked for ahead, the
                // keys 16 positions on and these positions' values (read after the softmax) come as two streams.
                Prefetch(keys, (t + 16) * D, 4 * D);
                Prefetch(values, t * D, 4 * D);
                TRows.DotKeys4(keys.Slice(t * D, 4 * D), q, out float s0, out float s1, out float s2, out float s3);
                w[t] = s0 / scale;
                w[t + 1] = s1 / scale;
                w[t + 2] = s2 / scale;
                w[t + 3] = s3 / scale;
            }
            for (; t <= p; t++) w[t] = TRows.Dot(keys.Slice(t * D, D), q) / scale;
            FinishRow<T, TRows>(w, values, y.Slice(r * E + h * D, D),
                probs.IsEmpty ? probs : probs.Slice((h * rows + r) * total, total));
        }
    }

    /// <summary>Asks for elements start .. start + length − 1 of <paramref name="block"/> (those inside it) to be
    /// brought into the L1 cache, one request per 64-byte line; no effect where the CPU has no prefetch
    /// instruction.</summary>
    private static unsafe void Prefetch<T>(ReadOnlySpan<T> block, int start, int length) where T : unmanaged
    {
        if (!Sse.IsSupported) return;
        int end = Math.Min(start + length, block.Length);
        fixed (T* p = block)
            for (int i = start; i < end; i += 64 / sizeof(T)) Sse.Prefetch0(p + i);
    }

    /// <summary>The rest of one row of attention from its scores w over positions 0..p: softmax, the weighted sum of
    /// v into yRow, and (if asked) the weights into probsRow [past + rows] for output_attentions (future =
    /// 0).</summary>
    private static void FinishRow<T, TRows>(Span<float> w, ReadOnlySpan<T> vh, Span<float> yRow, Span<float> probsRow)
        where T : unmanaged where TRows : ICacheRows<T>
    {
        Softmax(w);
        TRows.WeightedSum(w, vh[..(w.Length * yRow.Length)], yRow);
        if (probsRow.IsEmpty) return;
        w.CopyTo(probsRow);
        probsRow[w.Length..].Clear();
    }
}
