using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// The prefill product with Q8_0 weights done in integers, for CPUs with AVX2:
///
///     y[i, j] = bias[j] + Σ_b dx[i, b] · dw[j, b] · Σ_{k in block b} qx[i, k] · qw[j, k]
///
/// the same sum decode's <see cref="CpuKernels.DotQ8"/> computes, for many rows at once. vpdpbusd multiplies
/// unsigned bytes by signed bytes and adds each four neighbouring products into a 32-bit lane, exactly. The input
/// is made unsigned by an offset, u = qx + 128 (1 .. 255), which adds 128 · Σ_k qw[j, k] to every block's sum;
/// that column sum is taken once per block when the weights are packed and subtracted before the scale is applied.
///
///     weights, per block of 16 columns:  packed[b, q, h, c, 0..3] = qw[j0 + 8h + c, 32b + 4q .. 32b + 4q + 3]
///     micro-kernel, 4 rows × 16 columns: for each block b and step q (0..7), one 32-bit broadcast of a row's
///                                        four input bytes against two vectors of eight columns' four weights
///
/// so a block's 4 × 16 × 32 multiply-adds are 64 instructions into eight integer accumulators, then per row and
/// eight columns one subtraction, one conversion and one FMA with dx · dw into the float sums. Float32 FMAs on the
/// dequantized weights need 128 instructions of 512 bits for the same work: on one Zen 5 core ~135 GMAC/s against
/// ~93 (docs/benchmarks.md). Packing is an 8×8 transpose of 32-bit groups per half block; Q4_0 codes are unpacked
/// to bytes first.
///
/// Without AVX-VNNI the same packed weights go through vpmaddubsw, which multiplies unsigned by signed bytes too but
/// adds only neighbouring pairs, into 16-bit lanes that u · qw could overflow (2 · 255 · 127 &gt; 2^15). There the
/// input stays signed and each weight's sign moves onto it, |qw| · (qx · sign qw) (2 · 128 · 127 &lt; 2^15), and
/// vpmaddwd by ones adds the pairs into the same four-byte lanes (<see cref="SignMoved"/>): four instructions
/// where vpdpbusd is one, two of them multiplies, which beats the 256-bit float32 GEMM but not the 512-bit one
/// (<see cref="Pays"/>). Both forms give the exact block sums, so both give the same bits.
/// </summary>
public static unsafe class Q8Gemm
{
    public const int Rows = 4, Columns = 16;
    private const int B = Loading.Q8_0.BlockSize;

    /// <summary>AVX2 (vpmaddubsw, vpmaddwd) and FMA: every x86-64 CPU since Haswell and Zen 1.</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    /// <summary>vpdpbusd in its 256-bit VEX form (AVX-VNNI: Intel since Alder Lake and Sapphire Rapids, AMD since
    /// Zen 5): the block sums in one instruction per 32 multiply-adds instead of four.</summary>
    public static bool HasVnni => AvxVnni.IsSupported && IsSupported;

    /// <summary>Whether prefill takes this product rather than widening the weights into the float32 GEMM: with
    /// AVX-VNNI always; without it only where that GEMM has no 512-bit FMAs. vpmaddubsw's form does 32 products in
    /// four instructions, two of them multiplies: 16 products a multiply against a 256-bit FMA's 8, but a 512-bit
    /// FMA does 16 on its own (docs/benchmarks.md, session 17).</summary>
    public static bool Pays => HasVnni || (IsSupported && !Avx512F.IsSupported);

    /// <summary>y [m, n] = x · wᵀ + bias with x given as Q8_0 rows (<see cref="CpuKernels.QuantizeQ8"/>: quants
    /// <paramref name="xq"/> [m, k], scales <paramref name="xd"/> [m, k / 32]).</summary>
    public static void MatMulNT(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q8Weights w, ReadOnlySpan<float> bias,
        Span<float> y, int m, int n, int k) => MatMulNT(xq, xd, w, bias, y, m, n, k, HasVnni);

    /// <summary><see cref="MatMulNT(ReadOnlySpan{sbyte}, ReadOnlySpan{float}, Q8Weights, ReadOnlySpan{float},
    /// Span{float}, int, int, int)"/> with vpdpbusd or without it (tests run both where the CPU has it).</summary>
    internal static void MatMulNT(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q8Weights w, ReadOnlySpan<float> bias,
        Span<float> y, int m, int n, int k, bool vnni)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Quants.Length, (long)n * k, nameof(w));
        // the widened scales where the weights hold them (no AVX-512), else the halves, widened as they are packed
        fixed (sbyte* qw = w.Quants.Span)
        fixed (float* dw = w.WideScales.Span)
        fixed (Half* dh = w.Scales.Span)
            MatMulNT(xq, xd, qw, null, dw, dw == null ? dh : null, bias, y, m, n, k, vnni);
    }

    /// <summary>The same with Q4_0 weights: each block's codes are unpacked to q − 8 (−8 … 7) as they are packed, and
    /// from there on it is the same product.</summary>
    public static void MatMulNT(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q4Weights w, ReadOnlySpan<float> bias,
        Span<float> y, int m, int n, int k) => MatMulNT(xq, xd, w, bias, y, m, n, k, HasVnni);

    internal static void MatMulNT(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, Q4Weights w, ReadOnlySpan<float> bias,
        Span<float> y, int m, int n, int k, bool vnni)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(w.Codes.Length, (long)n * k / 2, nameof(w));
        fixed (byte* codes = w.Codes.Span)
        fixed (float* dw = w.Scales.Span)
            MatMulNT(xq, xd, null, codes, dw, null, bias, y, m, n, k, vnni);
    }

    private static void MatMulNT(ReadOnlySpan<sbyte> xq, ReadOnlySpan<float> xd, sbyte* qw, byte* codes, float* dw,
        Half* dh, ReadOnlySpan<float> bias, Span<float> y, int m, int n, int k, bool vnni)
    {
        if (!IsSupported) throw new PlatformNotSupportedException("Q8Gemm needs AVX2 and FMA");
        if (vnni && !HasVnni) throw new PlatformNotSupportedException("vpdpbusd needs AVX-VNNI");
        ArgumentOutOfRangeException.ThrowIfNotEqual(k % B, 0, nameof(k));
        ArgumentOutOfRangeException.ThrowIfLessThan(xq.Length, m * k, nameof(xq));
        ArgumentOutOfRangeException.ThrowIfLessThan(xd.Length, m * k / B, nameof(xd));
        ArgumentOutOfRangeException.ThrowIfLessThan(y.Length, m * n, nameof(y));
        if (bias.Length > 0) ArgumentOutOfRangeException.ThrowIfLessThan(bias.Length, n, nameof(bias));
        byte[]? u = vnni ? System.Buffers.ArrayPool<byte>.Shared.Rent(m * k) : null;
        try
        {
            if (u is not null)
            {
                // u = qx + 128: flipping the top bit of a two's-complement byte adds 128 (mod 256).
                var flip = Vector256.Create(unchecked((sbyte)0x80));
                int i = 0;
                for (; i + 32 <= m * k; i += 32)
                    (Vector256.Create(xq[i..]) ^ flip).AsByte().CopyTo(u.AsSpan(i));
                for (; i < m * k; i++) u[i] = (byte)(xq[i] ^ unchecked((sbyte)0x80));
            }
            fixed (byte* pu = u)
            fixed (sbyte* px = xq)
            fixed (float* pdx = xd, pb = bias, py = y)
            {
                var o = new Operands(vnni ? pu : (byte*)px, pdx, qw, codes, dw, dh, bias.Length > 0 ? pb : null, py);
                if (vnni) Run<Vnni>(o, m, n, k);
                else Run<SignMoved>(o, m, n, k);
            }
        }
        finally { if (u is not null) System.Buffers.ArrayPool<byte>.Shared.Return(u); }
    }

    /// <summary>The pinned operands, as one value the parallel loop can carry: the input bytes <see cref="U"/> (qx +
    /// 128 for vpdpbusd, qx itself for <see cref="SignMoved"/>); the weights are Q8_0 bytes (<see cref="Qw"/>)
    /// or Q4_0 codes (<see cref="Codes"/>), the other null; the scales float32 (<see cref="Dw"/>) or float16
    /// (<see cref="Dh"/>, Q8_0 where the weights hold no widened copy), the other null.</summary>
    private readonly struct Operands(byte* u, float* dx, sbyte* qw, byte* codes, float* dw, Half* dh, float* bias,
        float* y)
    {
        public readonly byte* U = u, Codes = codes;
        public readonly float* Dx = dx, Dw = dw, Bias = bias, Y = y;
        public readonly sbyte* Qw = qw;
        public readonly Half* Dh = dh;
    }

    /// <summary>The product in form <typeparamref name="T"/>, a block of 16 columns at a time: packed (with the
    /// column sums only where the form offsets its input), then every row against it.</summary>
    private static void Run<T>(Operands o, int m, int n, int k) where T : IByteProducts
    {
        int blocks = k / B, columnBlocks = (n + Columns - 1) / Columns;
        int tasks = (long)m * n * k < 1 << 20 ? 1 : Math.Min(columnBlocks, Environment.ProcessorCount * 4);
        void RunColumns(int t)
        {
            int c0 = (int)((long)columnBlocks * t / tasks), c1 = (int)((long)columnBlocks * (t + 1) / tasks);
            sbyte[] packed = System.Buffers.ArrayPool<sbyte>.Shared.Rent(Columns * k);
            int[]? sums = T.Offset ? System.Buffers.ArrayPool<int>.Shared.Rent(Columns * blocks) : null;
            float[] scales = System.Buffers.ArrayPool<float>.Shared.Rent(Columns * blocks);
            try
            {
                fixed (sbyte* pp = packed)
                fixed (int* ps = sums)
                fixed (float* pd = scales)
                    for (int cb = c0; cb < c1; cb++)
                    {
                        int j0 = cb * Columns, cols = Math.Min(Columns, n - j0);
                        Pack(o, j0, cols, k, pp, ps, pd);
                        for (int i0 = 0; i0 < m; i0 += Rows)
                            Kernel<T>(o.U, o.Dx, i0, Math.Min(Rows, m - i0), k, pp, ps, pd,
                                o.Bias is null ? null : o.Bias + j0, o.Y, n, j0, cols);
                    }
            }
            finally
            {
                System.Buffers.ArrayPool<sbyte>.Shared.Return(packed);
                if (sums is not null) System.Buffers.ArrayPool<int>.Shared.Return(sums);
                System.Buffers.ArrayPool<float>.Shared.Return(scales);
            }
        }
        ForkJoin.For(tasks, RunColumns);
    }

    /// <summary>Columns j0 .. j0 + cols − 1 (up to 16; missing ones are zero) into the kernel's order, with each
    /// block's scales dw and (where <paramref name="sums"/> is given, for vpdpbusd) its 128 · Σ qw, 16 to a
    /// block.</summary>
    private static void Pack(Operands o, int j0, int cols, int k, sbyte* packed, int* sums, float* scales)
    {
        int blocks = k / B;
        var ones = Vector256.Create((byte)1);
        sbyte* unpacked = stackalloc sbyte[Columns * B];   // a block of Q4_0 codes as q − 8, column by column
        // Q8_0's float16 scales: each column's row of them widened at once (vectorized), not one at a time
        Span<float> wide = o.Dh == null ? default
            : blocks <= 512 ? stackalloc float[cols * blocks] : new float[cols * blocks];
        for (int c = 0; o.Dh != null && c < cols; c++)
            System.Numerics.Tensors.TensorPrimitives.ConvertToSingle(
                new ReadOnlySpan<Half>(o.Dh + (long)(j0 + c) * blocks, blocks), wide.Slice(c * blocks, blocks));
        for (int b = 0; b < blocks; b++)
        {
            int* dst = (int*)(packed + b * Columns * B);   // [q, h, c] of four bytes each
            if (o.Codes != null)
                for (int c = 0; c < cols; c++)
                    Unpack(o.Codes + ((long)(j0 + c) * k + b * B) / 2, unpacked + c * B);
            if (cols == Columns)
                // each half's eight columns × eight groups of four bytes: an 8×8 transpose of 32-bit values
                for (int h = 0; h < 2; h++)
                {
                    var src = o.Qw != null ? (float*)(o.Qw + (long)(j0 + 8 * h) * k + b * B)
                        : (float*)(unpacked + 8 * h * B);
                    PackedGemm.Transpose8x8(src, o.Qw != null ? k / 4 : B / 4, (float*)dst + 8 * h, 2 * 8);
                }
            else
                for (int c = 0; c < Columns; c++)
                {
                    int* src = c >= cols ? null
                        : o.Qw != null ? (int*)(o.Qw + (long)(j0 + c) * k + b * B) : (int*)(unpacked + c * B);
                    for (int q = 0; q < B / 4; q++)
                        dst[(q * 2 + c / 8) * 8 + c % 8] = src is null ? 0 : src[q];
                }
            for (int c = 0; c < Columns; c++)
                scales[b * Columns + c] = c >= cols ? 0f : o.Dh != null ? wide[c * blocks + b]
                    : o.Dw[(long)(j0 + c) * blocks + b];
            if (sums == null) continue;
            // Σ qw over the block for eight columns at a time: vpdpbusd against ones
            Vector256<int> lo = default, hi = default;
            for (int q = 0; q < B / 4; q++)
            {
                lo = AvxVnni.MultiplyWideningAndAdd(lo, ones, Avx.LoadVector256((sbyte*)(dst + q * 16)));
                hi = AvxVnni.MultiplyWideningAndAdd(hi, ones, Avx.LoadVector256((sbyte*)(dst + q * 16 + 8)));
            }
            Avx.Store(sums + b * Columns, Avx2.ShiftLeftLogical(lo, 7));
            Avx.Store(sums + b * Columns + 8, Avx2.ShiftLeftLogical(hi, 7));
        }
    }

    /// <summary>One block's 16 bytes of Q4_0 codes as 32 signed bytes q − 8, in order (low halves are values 0–15,
    /// high halves 16–31), into <paramref name="dst"/>.</summary>
    private static void Unpack(byte* codes, sbyte* dst)
    {
        var packed = Vector128.Load(codes);
        var eight = Vector128.Create((sbyte)8);
        ((packed & Vector128.Create((byte)0x0F)).AsSByte() - eight).Store(dst);
        (Vector128.ShiftRightLogical(packed, 4).AsSByte() - eight).Store(dst + 16);
    }

    /// <summary>How a kernel multiplies a row's four input bytes (one 32-bit value, in every lane) by eight columns'
    /// four weight bytes and adds each lane's four products to its 32-bit sum.</summary>
    private interface IByteProducts
    {
        /// <summary>Whether the input is offset, u = qx + 128, so each block's 128 · Σ qw is to be taken off.</summary>
        static abstract bool Offset { get; }
        /// <summary>What the form needs of a weight vector besides itself, taken once for all four rows.</summary>
        static abstract Vector256<sbyte> Prepare(Vector256<sbyte> w);
        static abstract Vector256<int> Add(Vector256<int> sum, Vector256<int> x, Vector256<sbyte> w,
            Vector256<sbyte> prepared);
    }

    /// <summary>vpdpbusd on the offset input u: one instruction.</summary>
    private readonly struct Vnni : IByteProducts
    {
        public static bool Offset => true;
        public static Vector256<sbyte> Prepare(Vector256<sbyte> w) => w;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Add(Vector256<int> sum, Vector256<int> x, Vector256<sbyte> w,
            Vector256<sbyte> prepared) => AvxVnni.MultiplyWideningAndAdd(sum, x.AsByte(), w);
    }

    /// <summary>On the signed input: |qw| · (x · sign qw) with vpmaddubsw into 16-bit pairs, then vpmaddwd by ones
    /// into the lanes vpdpbusd would have filled; |qw| is the prepared vector.</summary>
    private readonly struct SignMoved : IByteProducts
    {
        public static bool Offset => false;
        public static Vector256<sbyte> Prepare(Vector256<sbyte> w) => Avx2.Abs(w).AsSByte();

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Vector256<int> Add(Vector256<int> sum, Vector256<int> x, Vector256<sbyte> w,
            Vector256<sbyte> magnitude)
        {
            var pairs = Avx2.MultiplyAddAdjacent(magnitude.AsByte(), Avx2.Sign(x.AsSByte(), w));
            return Avx2.Add(sum, Avx2.MultiplyAddAdjacent(pairs, Vector256.Create((short)1)));
        }
    }

    /// <summary>Rows i0 .. i0 + rows − 1 (up to 4) of the input bytes <paramref name="x"/> (u for <see cref="Vnni"/>,
    /// qx for <see cref="SignMoved"/>) × the packed 16 columns. Missing rows repeat row i0 (their sums are dropped),
    /// so the loop has no branches. Eight integer accumulators, so eight independent chains (vpdpbusd waits ~4 cycles
    /// on its last); the float sums wait in <paramref name="acc"/> (L1) between blocks, as VEX instructions reach only
    /// 16 vector registers.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel<T>(byte* x, float* dx, int i0, int rows, int k, sbyte* packed, int* sums,
        float* scales, float* bias, float* y, int n, int j0, int cols)
        where T : IByteProducts
    {
        int blocks = k / B;
        var acc = stackalloc Vector256<float>[2 * Rows];
        for (int r = 0; r < 2 * Rows; r++) acc[r] = default;
        byte* a0 = x + (long)i0 * k, a1 = rows > 1 ? a0 + k : a0, a2 = rows > 2 ? a0 + 2 * k : a0,
            a3 = rows > 3 ? a0 + 3 * k : a0;
        float* d0 = dx + (long)i0 * blocks;
        int r1 = rows > 1 ? blocks : 0, r2 = rows > 2 ? 2 * blocks : 0, r3 = rows > 3 ? 3 * blocks : 0;
        for (int b = 0; b < blocks; b++)
        {
            Vector256<int> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector256<int> s20 = default, s21 = default, s30 = default, s31 = default;
            sbyte* wb = packed + b * Columns * B;
            int* x0 = (int*)(a0 + b * B), x1 = (int*)(a1 + b * B), x2 = (int*)(a2 + b * B), x3 = (int*)(a3 + b * B);
            for (int q = 0; q < B / 4; q++)
            {
                var w0 = Avx.LoadVector256(wb + q * 64);
                var w1 = Avx.LoadVector256(wb + q * 64 + 32);
                var p0 = T.Prepare(w0);
                var p1 = T.Prepare(w1);
                var xr = Vector256.Create(x0[q]);
                s00 = T.Add(s00, xr, w0, p0);
                s01 = T.Add(s01, xr, w1, p1);
                xr = Vector256.Create(x1[q]);
                s10 = T.Add(s10, xr, w0, p0);
                s11 = T.Add(s11, xr, w1, p1);
                xr = Vector256.Create(x2[q]);
                s20 = T.Add(s20, xr, w0, p0);
                s21 = T.Add(s21, xr, w1, p1);
                xr = Vector256.Create(x3[q]);
                s30 = T.Add(s30, xr, w0, p0);
                s31 = T.Add(s31, xr, w1, p1);
            }
            // Σ qx·qw (= Σ u·qw − 128·Σ qw with the offset), exact; then × dx · dw into the float sums
            var k0 = T.Offset ? Avx.LoadVector256(sums + b * Columns) : Vector256<int>.Zero;
            var k1 = T.Offset ? Avx.LoadVector256(sums + b * Columns + 8) : Vector256<int>.Zero;
            var dw0 = Avx.LoadVector256(scales + b * Columns);
            var dw1 = Avx.LoadVector256(scales + b * Columns + 8);
            Accumulate(acc, s00, s01, k0, k1, dw0, dw1, d0[b]);
            Accumulate(acc + 2, s10, s11, k0, k1, dw0, dw1, d0[r1 + b]);
            Accumulate(acc + 4, s20, s21, k0, k1, dw0, dw1, d0[r2 + b]);
            Accumulate(acc + 6, s30, s31, k0, k1, dw0, dw1, d0[r3 + b]);
        }
        for (int r = 0; r < rows; r++) Store(acc[2 * r], acc[2 * r + 1], bias, y + (long)(i0 + r) * n + j0, cols);
    }

    /// <summary>One row's block into its float sums: (Σ u·qw − 128·Σ qw) · dx · dw, for 16 columns.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Accumulate(Vector256<float>* acc, Vector256<int> lo, Vector256<int> hi, Vector256<int> k0,
        Vector256<int> k1, Vector256<float> dw0, Vector256<float> dw1, float dx)
    {
        var d = Vector256.Create(dx);
        acc[0] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(lo, k0)), dw0 * d, acc[0]);
        acc[1] = Fma.MultiplyAdd(Avx.ConvertToVector256Single(Avx2.Subtract(hi, k1)), dw1 * d, acc[1]);
    }

    private static void Store(Vector256<float> lo, Vector256<float> hi, float* bias, float* row, int cols)
    {
        if (bias != null && cols == Columns)
        {
            lo += Avx.LoadVector256(bias);
            hi += Avx.LoadVector256(bias + 8);
        }
        if (cols == Columns)
        {
            Avx.Store(row, lo);
            Avx.Store(row + 8, hi);
            return;
        }
        for (int c = 0; c < cols; c++)
            row[c] = (c < 8 ? lo[c] : hi[c - 8]) + (bias != null ? bias[c] : 0f);
    }
}
