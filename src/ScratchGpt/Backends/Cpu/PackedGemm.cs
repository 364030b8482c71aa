using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// <see cref="Gemm"/>'s product C[M, N] (+)= A[M, K] · B[N, K]ᵀ (+ bias[N]) as outer products, on CPUs with AVX2 +
/// FMA or AVX-512. With 512-bit vectors (AVX-512: 32 vector registers):
///
///     A is copied once per call into panels of 32 rows, k-major:   panel[p, 0..31] = A[i0 .. i0+31, p]
///     one micro-kernel step p:   C[i0..i0+31, j0..j0+7] += panel[p, :] ⊗ B[j0..j0+7, p]
///                                (two 16-float loads of the panel, eight broadcasts of B, sixteen FMAs)
///
/// The 32×8 block of C lives in sixteen registers for all K steps and is written once. B is read where it
/// lies (eight row pointers walking along k), so weights are never repacked, and each of its values is loaded
/// once per 32 rows of A; each value of A once per 8 columns of B. No horizontal sums, unlike the dot-product
/// tiles, which makes this ~15% faster on gpt2's prefill shapes (docs/benchmarks.md). With 256-bit vectors (AVX2:
/// 16 registers) the block is 16 rows × 6 columns: twelve accumulators, two panel loads and one broadcast fill
/// fifteen of the sixteen registers, and a step's eight loads feed twelve FMAs.
/// </summary>
internal static unsafe class PackedGemm
{
    /// <summary>The shape of C's block a micro-kernel keeps in registers (<see cref="Wide"/>: 32 × 8 for
    /// 512-bit vectors; <see cref="Narrow"/>: 16 × 6 for 256-bit ones).</summary>
    internal readonly record struct Blocking(int PanelRows, int BlockColumns);

    internal static readonly Blocking Wide = new(32, 8), Narrow = new(16, 6);

    /// <summary>The blocking this CPU runs.</summary>
    public static Blocking Native { get; } = Avx512F.IsSupported ? Wide : Narrow;

    /// <summary>AVX2 + FMA for the 256-bit kernel (and its 8×8 transposes when packing A).</summary>
    public static bool IsSupported => Avx2.IsSupported && Fma.IsSupported;

    // Rows of A packed per pass: about 2 MB of panels, which stay in L2/L3 while every block of B passes over them.
    private const long PassBytes = 2L << 20;

    /// <summary>The product with float32 B read in place (<paramref name="b"/>), or with B given by
    /// <paramref name="widen"/> one block of rows (a block's columns of C) at a time (float16, Q8_0 or Q4_0
    /// weights).</summary>
    public static void MatMulNT(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, Gemm.WidenRows? widen,
        Memory<float> c, int m, int n, int k, ReadOnlyMemory<float> bias, bool accumulate) =>
        MatMulNT(Native, a, b, widen, c, m, n, k, bias, accumulate);

    /// <summary>The same with a given blocking (the tests run <see cref="Narrow"/> on AVX-512 CPUs too).</summary>
    internal static void MatMulNT(Blocking blocking, ReadOnlyMemory<float> a, ReadOnlyMemory<float> b,
        Gemm.WidenRows? widen, Memory<float> c, int m, int n, int k, ReadOnlyMemory<float> bias, bool accumulate)
    {
        if (blocking == Wide && !Avx512F.IsSupported)
            throw new PlatformNotSupportedException("the 32 × 8 blocking needs AVX-512");
        var (panelRows, _) = blocking;
        int allRows = (m + panelRows - 1) / panelRows * panelRows;
        int rowsPerPass = (int)Math.Clamp(PassBytes / (4L * k) / panelRows * panelRows, panelRows, allRows);
        float[] packed = System.Buffers.ArrayPool<float>.Shared.Rent(rowsPerPass * k);
        try
        {
            for (int i0 = 0; i0 < m; i0 += rowsPerPass)
            {
                int rows = Math.Min(rowsPerPass, m - i0);
                PackPanels(a.Slice(i0 * k, rows * k), packed, rows, k, panelRows);
                RunPass(blocking, packed, rows, b, widen, c[(i0 * n)..], n, k, bias, accumulate);
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(packed); }
    }

    /// <summary>All of C's columns for one pass of <paramref name="rows"/> packed rows; blocks of columns are
    /// shared out between the cores.</summary>
    private static void RunPass(Blocking blocking, float[] packed, int rows, ReadOnlyMemory<float> b,
        Gemm.WidenRows? widen, Memory<float> c, int n, int k, ReadOnlyMemory<float> bias, bool accumulate)
    {
        var (panelRows, blockColumns) = blocking;
        int blocks = (n + blockColumns - 1) / blockColumns;
        int tasks = (long)rows * n * k < 1 << 18 ? 1 : Math.Min(blocks, Environment.ProcessorCount * 4);
        void RunBlocks(int t)
        {
            int b0 = (int)((long)blocks * t / tasks), b1 = (int)((long)blocks * (t + 1) / tasks);
            // A block of B that is not float32 in memory, or is the last with fewer rows, goes through this
            // scratch: a block's rows of K, zero past the end.
            float[] scratch = System.Buffers.ArrayPool<float>.Shared.Rent(blockColumns * k);
            float* acc = stackalloc float[panelRows * blockColumns];   // the kernel's registers, for the epilogue
            try
            {
                fixed (float* pPacked = packed, pScratch = scratch, pB = b.Span, pC = c.Span, pBias = bias.Span)
                    for (int blk = b0; blk < b1; blk++)
                    {
                        int j0 = blk * blockColumns, cols = Math.Min(blockColumns, n - j0);
                        float* rowsOfB = pB + (long)j0 * k;
                        if (widen is not null || cols < blockColumns)
                        {
                            var dst = scratch.AsSpan(0, blockColumns * k);
                            if (widen is not null) widen(j0, cols, dst[..(cols * k)]);
                            else b.Span.Slice(j0 * k, cols * k).CopyTo(dst);
                            dst[(cols * k)..].Clear();
                            rowsOfB = pScratch;
                        }
                        for (int p0 = 0; p0 < rows; p0 += panelRows)
                        {
                            if (blocking == Wide) Kernel32x8(pPacked + (long)p0 * k, rowsOfB, k, acc);
                            else Kernel16x6(pPacked + (long)p0 * k, rowsOfB, k, acc);
                            Store(blocking, acc, pC + (long)p0 * n + j0, n, Math.Min(panelRows, rows - p0), cols,
                                bias.IsEmpty ? null : pBias + j0, accumulate);
                        }
                    }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
        }
        ForkJoin.For(tasks, RunBlocks);
    }

    /// <summary>Rows of A [rows, K] → panels of <paramref name="panelRows"/> rows, each [K, panelRows] (rows past
    /// the end are zero). Eight rows at a time by an 8×8 transpose in registers; the panels shared out between the
    /// cores.</summary>
    private static void PackPanels(ReadOnlyMemory<float> a, float[] packed, int rows, int k, int panelRows)
    {
        int panels = (rows + panelRows - 1) / panelRows;
        void Pack(int panelIndex)
        {
            int p0 = panelIndex * panelRows;
            fixed (float* pa = a.Span, pp = packed)
            {
                float* panel = pp + (long)p0 * k;
                for (int r0 = 0; r0 < panelRows; r0 += 8)
                {
                    int i = p0 + r0, p = 0;
                    float* src = pa + (long)i * k;
                    if (i + 8 <= rows)
                        for (; p + 8 <= k; p += 8, src += 8)
                            Transpose8x8(src, k, panel + p * panelRows + r0, panelRows);
                    for (; p < k; p++)
                        for (int r = 0; r < 8; r++)
                            panel[p * panelRows + r0 + r] = i + r < rows ? pa[(long)(i + r) * k + p] : 0f;
                }
            }
        }
        if ((long)rows * k < 1 << 16) for (int i = 0; i < panels; i++) Pack(i);
        else ForkJoin.For(panels, Pack);
    }

    /// <summary>dst[c·dstStride + r] = src[r·srcStride + c] for an 8×8 block (of any 32-bit values: the shuffles
    /// move bits, so <see cref="Q8Gemm"/> packs groups of four bytes with it).</summary>
    internal static void Transpose8x8(float* src, int srcStride, float* dst, int dstStride)
    {
        Vector256<float> r0 = Avx.LoadVector256(src), r1 = Avx.LoadVector256(src + srcStride),
            r2 = Avx.LoadVector256(src + 2 * srcStride), r3 = Avx.LoadVector256(src + 3 * srcStride),
            r4 = Avx.LoadVector256(src + 4 * srcStride), r5 = Avx.LoadVector256(src + 5 * srcStride),
            r6 = Avx.LoadVector256(src + 6 * srcStride), r7 = Avx.LoadVector256(src + 7 * srcStride);
        // pairs of rows interleaved, then pairs of pairs: each 128-bit half holds four rows' values of one column
        var t0 = Avx.UnpackLow(r0, r1); var t1 = Avx.UnpackHigh(r0, r1);
        var t2 = Avx.UnpackLow(r2, r3); var t3 = Avx.UnpackHigh(r2, r3);
        var t4 = Avx.UnpackLow(r4, r5); var t5 = Avx.UnpackHigh(r4, r5);
        var t6 = Avx.UnpackLow(r6, r7); var t7 = Avx.UnpackHigh(r6, r7);
        var s0 = Avx.Shuffle(t0, t2, 0x44); var s1 = Avx.Shuffle(t0, t2, 0xEE);
        var s2 = Avx.Shuffle(t1, t3, 0x44); var s3 = Avx.Shuffle(t1, t3, 0xEE);
        var s4 = Avx.Shuffle(t4, t6, 0x44); var s5 = Avx.Shuffle(t4, t6, 0xEE);
        var s6 = Avx.Shuffle(t5, t7, 0x44); var s7 = Avx.Shuffle(t5, t7, 0xEE);
        // rows 0–3 of a column sit in s·'s halves, rows 4–7 in the matching halves of s(·+4)
        Avx.Store(dst, Avx.Permute2x128(s0, s4, 0x20));
        Avx.Store(dst + dstStride, Avx.Permute2x128(s1, s5, 0x20));
        Avx.Store(dst + 2 * dstStride, Avx.Permute2x128(s2, s6, 0x20));
        Avx.Store(dst + 3 * dstStride, Avx.Permute2x128(s3, s7, 0x20));
        Avx.Store(dst + 4 * dstStride, Avx.Permute2x128(s0, s4, 0x31));
        Avx.Store(dst + 5 * dstStride, Avx.Permute2x128(s1, s5, 0x31));
        Avx.Store(dst + 6 * dstStride, Avx.Permute2x128(s2, s6, 0x31));
        Avx.Store(dst + 7 * dstStride, Avx.Permute2x128(s3, s7, 0x31));
    }

    /// <summary>
    /// The 32×8 block: acc[32j .. 32j+31] = Σ_p panel[p, 0..31] · B[j, p], over all K. The sums stay in registers
    /// and go to <paramref name="acc"/> once at the end; no stackalloc and no calls inside, which would make the
    /// JIT keep the sixteen accumulators on the stack.
    /// </summary>
    private static void Kernel32x8(float* panel, float* b, int k, float* acc)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default;   // rows 0–15, columns 0–7
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default,
            d6 = default, d7 = default;   // rows 16–31
        float* b0 = b, b1 = b + k, b2 = b + 2 * k, b3 = b + 3 * k, b4 = b + 4 * k, b5 = b + 5 * k, b6 = b + 6 * k,
            b7 = b + 7 * k;
        for (nint p = 0; p < k; p++, panel += 32)
        {
            var lo = Avx512F.LoadVector512(panel);
            var hi = Avx512F.LoadVector512(panel + 16);
            var w = Vector512.Create(b0[p]);
            c0 = Avx512F.FusedMultiplyAdd(lo, w, c0); d0 = Avx512F.FusedMultiplyAdd(hi, w, d0);
            w = Vector512.Create(b1[p]);
            c1 = Avx512F.FusedMultiplyAdd(lo, w, c1); d1 = Avx512F.FusedMultiplyAdd(hi, w, d1);
            w = Vector512.Create(b2[p]);
            c2 = Avx512F.FusedMultiplyAdd(lo, w, c2); d2 = Avx512F.FusedMultiplyAdd(hi, w, d2);
            w = Vector512.Create(b3[p]);
            c3 = Avx512F.FusedMultiplyAdd(lo, w, c3); d3 = Avx512F.FusedMultiplyAdd(hi, w, d3);
            w = Vector512.Create(b4[p]);
            c4 = Avx512F.FusedMultiplyAdd(lo, w, c4); d4 = Avx512F.FusedMultiplyAdd(hi, w, d4);
            w = Vector512.Create(b5[p]);
            c5 = Avx512F.FusedMultiplyAdd(lo, w, c5); d5 = Avx512F.FusedMultiplyAdd(hi, w, d5);
            w = Vector512.Create(b6[p]);
            c6 = Avx512F.FusedMultiplyAdd(lo, w, c6); d6 = Avx512F.FusedMultiplyAdd(hi, w, d6);
            w = Vector512.Create(b7[p]);
            c7 = Avx512F.FusedMultiplyAdd(lo, w, c7); d7 = Avx512F.FusedMultiplyAdd(hi, w, d7);
        }
        var v = (Vector512<float>*)acc;   // column j's 32 rows at acc + 32 j
        v[0] = c0; v[1] = d0; v[2] = c1; v[3] = d1; v[4] = c2; v[5] = d2; v[6] = c3; v[7] = d3;
        v[8] = c4; v[9] = d4; v[10] = c5; v[11] = d5; v[12] = c6; v[13] = d6; v[14] = c7; v[15] = d7;
    }

    /// <summary>The 16×6 block with 256-bit vectors: acc[16j .. 16j+15] = Σ_p panel[p, 0..15] · B[j, p].</summary>
    private static void Kernel16x6(float* panel, float* b, int k, float* acc)
    {
        Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default,
            c5 = default;   // rows 0–7, columns 0–5
        Vector256<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default;   // 8–15
        float* b0 = b, b1 = b + k, b2 = b + 2 * k, b3 = b + 3 * k, b4 = b + 4 * k, b5 = b + 5 * k;
        for (nint p = 0; p < k; p++, panel += 16)
        {
            var lo = Avx.LoadVector256(panel);
            var hi = Avx.LoadVector256(panel + 8);
            var w = Vector256.Create(b0[p]);
            c0 = Fma.MultiplyAdd(lo, w, c0); d0 = Fma.MultiplyAdd(hi, w, d0);
            w = Vector256.Create(b1[p]);
            c1 = Fma.MultiplyAdd(lo, w, c1); d1 = Fma.MultiplyAdd(hi, w, d1);
            w = Vector256.Create(b2[p]);
            c2 = Fma.MultiplyAdd(lo, w, c2); d2 = Fma.MultiplyAdd(hi, w, d2);
            w = Vector256.Create(b3[p]);
            c3 = Fma.MultiplyAdd(lo, w, c3); d3 = Fma.MultiplyAdd(hi, w, d3);
            w = Vector256.Create(b4[p]);
            c4 = Fma.MultiplyAdd(lo, w, c4); d4 = Fma.MultiplyAdd(hi, w, d4);
            w = Vector256.Create(b5[p]);
            c5 = Fma.MultiplyAdd(lo, w, c5); d5 = Fma.MultiplyAdd(hi, w, d5);
        }
        var v = (Vector256<float>*)acc;   // column j's 16 rows at acc + 16 j
        v[0] = c0; v[1] = d0; v[2] = c1; v[3] = d1; v[4] = c2; v[5] = d2; v[6] = c3; v[7] = d3;
        v[8] = c4; v[9] = d4; v[10] = c5; v[11] = d5;
    }

    /// <summary>The block to C: column j of the block is the panelRows floats at block + j·panelRows, so row r is
    /// every panelRows-th float from r (one gather for a full 32 × 8 block); then + bias, + C's old value when
    /// accumulating.</summary>
    private static void Store(Blocking blocking, float* block, float* c, int ldc, int rows, int cols, float* bias,
        bool accumulate)
    {
        var (panelRows, blockColumns) = blocking;
        var column = Vector256.Create(0, 32, 64, 96, 128, 160, 192, 224);
        for (int r = 0; r < rows; r++)
        {
            float* row = c + (long)r * ldc;
            if (blocking == Wide && cols == blockColumns)
            {
                var v = Avx2.GatherVector256(block + r, column, 4);
                if (bias != null) v += Avx.LoadVector256(bias);
                if (accumulate) v += Avx.LoadVector256(row);
                Avx.Store(row, v);
            }
            else
                for (int j = 0; j < cols; j++)
                {
                    float v = block[j * panelRows + r];
                    if (bias != null) v += bias[j];
                    row[j] = accumulate ? row[j] + v : v;
                }
        }
    }
}
