using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// <see cref="Gemm"/>'s product C[M, N] (+)= A[M, K] · B[N, K]ᵀ (+ bias[N]) as outer products, for CPUs with
/// 512-bit vectors (AVX-512: 32 vector registers).
///
///     A is copied once per call into panels of 32 rows, k-major:   panel[p, 0..31] = A[i0 .. i0+31, p]
///     one micro-kernel step p:   C[i0..i0+31, j0..j0+7] += panel[p, :] ⊗ B[j0..j0+7, p]
///                                (two 16-float loads of the panel, eight broadcasts of B, sixteen FMAs)
///
/// The 32×8 block of C lives in sixteen registers for all K steps and is written once. B is read where it
/// lies (eight row pointers walking along k), so weights are never repacked, and each of its values is loaded
/// once per 32 rows of A; each value of A once per 8 columns of B. No horizontal sums, unlike the dot-product
/// tiles, which makes this ~15% faster on gpt2's prefill shapes (docs/benchmarks.md).
/// </summary>
internal static unsafe class PackedGemm
{
    public const int PanelRows = 32, BlockColumns = 8;

    /// <summary>The kernel needs AVX-512F (sixteen accumulators plus operands fit only in its 32 registers) and
    /// AVX2's gather for the epilogue.</summary>
    public static bool IsSupported => Avx512F.IsSupported && Avx2.IsSupported;

    // Rows of A packed per pass: about 2 MB of panels, which stay in L2/L3 while every block of B passes over them.
    private const long PassBytes = 2L << 20;

    /// <summary>The product with float32 B read in place (<paramref name="b"/>), or with B given by
    /// <paramref name="widen"/> one block of eight rows at a time (float16 or Q8_0 weights).</summary>
    public static void MatMulNT(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, Gemm.WidenRows? widen,
        Memory<float> c, int m, int n, int k, ReadOnlyMemory<float> bias, bool accumulate)
    {
        int allRows = (m + PanelRows - 1) / PanelRows * PanelRows;
        int rowsPerPass = (int)Math.Clamp(PassBytes / (4L * k) / PanelRows * PanelRows, PanelRows, allRows);
        float[] packed = System.Buffers.ArrayPool<float>.Shared.Rent(rowsPerPass * k);
        try
        {
            for (int i0 = 0; i0 < m; i0 += rowsPerPass)
            {
                int rows = Math.Min(rowsPerPass, m - i0);
                PackPanels(a.Slice(i0 * k, rows * k), packed, rows, k);
                RunPass(packed, rows, b, widen, c[(i0 * n)..], n, k, bias, accumulate);
            }
        }
        finally { System.Buffers.ArrayPool<float>.Shared.Return(packed); }
    }

    /// <summary>All of C's columns for one pass of <paramref name="rows"/> packed rows; blocks of eight columns are
    /// shared out between the cores.</summary>
    private static void RunPass(float[] packed, int rows, ReadOnlyMemory<float> b, Gemm.WidenRows? widen,
        Memory<float> c, int n, int k, ReadOnlyMemory<float> bias, bool accumulate)
    {
        int blocks = (n + BlockColumns - 1) / BlockColumns;
        int tasks = (long)rows * n * k < 1 << 18 ? 1 : Math.Min(blocks, Environment.ProcessorCount * 4);
        void RunBlocks(int t)
        {
            int b0 = (int)((long)blocks * t / tasks), b1 = (int)((long)blocks * (t + 1) / tasks);
            // A block of B that is not float32 in memory, or is the last with fewer than eight rows, goes through
            // this scratch: eight rows of K, zero past the end.
            float[] scratch = System.Buffers.ArrayPool<float>.Shared.Rent(BlockColumns * k);
            var acc = stackalloc Vector512<float>[2 * BlockColumns];   // the kernel's registers, for the epilogue
            try
            {
                fixed (float* pPacked = packed, pScratch = scratch, pB = b.Span, pC = c.Span, pBias = bias.Span)
                    for (int blk = b0; blk < b1; blk++)
                    {
                        int j0 = blk * BlockColumns, cols = Math.Min(BlockColumns, n - j0);
                        float* rowsOfB = pB + (long)j0 * k;
                        if (widen is not null || cols < BlockColumns)
                        {
                            var dst = scratch.AsSpan(0, BlockColumns * k);
                            if (widen is not null) widen(j0, cols, dst[..(cols * k)]);
                            else b.Span.Slice(j0 * k, cols * k).CopyTo(dst);
                            dst[(cols * k)..].Clear();
                            rowsOfB = pScratch;
                        }
                        for (int p0 = 0; p0 < rows; p0 += PanelRows)
                        {
                            Kernel(pPacked + (long)p0 * k, rowsOfB, k, acc);
                            Store(acc, pC + (long)p0 * n + j0, n, Math.Min(PanelRows, rows - p0), cols,
                                bias.IsEmpty ? null : pBias + j0, accumulate);
                        }
                    }
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
        }
        ForkJoin.For(tasks, RunBlocks);
    }

    /// <summary>Rows of A [rows, K] → panels of 32 rows, each [K, 32] (rows past the end are zero). Eight rows
    /// at a time by an 8×8 transpose in registers; the panels shared out between the cores.</summary>
    private static void PackPanels(ReadOnlyMemory<float> a, float[] packed, int rows, int k)
    {
        int panels = (rows + PanelRows - 1) / PanelRows;
        void Pack(int panelIndex)
        {
            int p0 = panelIndex * PanelRows;
            fixed (float* pa = a.Span, pp = packed)
            {
                float* panel = pp + (long)p0 * k;
                for (int r0 = 0; r0 < PanelRows; r0 += 8)
                {
                    int i = p0 + r0, p = 0;
                    float* src = pa + (long)i * k;
                    if (i + 8 <= rows)
                        for (; p + 8 <= k; p += 8, src += 8)
                            Transpose8x8(src, k, panel + p * PanelRows + r0, PanelRows);
                    for (; p < k; p++)
                        for (int r = 0; r < 8; r++)
                            panel[p * PanelRows + r0 + r] = i + r < rows ? pa[(long)(i + r) * k + p] : 0f;
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
    /// The 32×8 block: acc[2j + h] = Σ_p panel[p, 16h .. 16h+15] · B[j, p], over all K. The sums stay in registers
    /// and go to <paramref name="acc"/> once at the end; no stackalloc and no calls inside, which would make the
    /// JIT keep the sixteen accumulators on the stack.
    /// </summary>
    private static void Kernel(float* panel, float* b, int k, Vector512<float>* acc)
    {
        Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default, c4 = default, c5 = default,
            c6 = default, c7 = default;   // rows 0–15, columns 0–7
        Vector512<float> d0 = default, d1 = default, d2 = default, d3 = default, d4 = default, d5 = default,
            d6 = default, d7 = default;   // rows 16–31
        float* b0 = b, b1 = b + k, b2 = b + 2 * k, b3 = b + 3 * k, b4 = b + 4 * k, b5 = b + 5 * k, b6 = b + 6 * k,
            b7 = b + 7 * k;
        for (nint p = 0; p < k; p++, panel += PanelRows)
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
        acc[0] = c0; acc[1] = d0; acc[2] = c1; acc[3] = d1; acc[4] = c2; acc[5] = d2; acc[6] = c3; acc[7] = d3;
        acc[8] = c4; acc[9] = d4; acc[10] = c5; acc[11] = d5; acc[12] = c6; acc[13] = d6; acc[14] = c7; acc[15] = d7;
    }

    /// <summary>The block to C: column j of the block is the 32 floats at acc + j·32, so row r is every 32nd
    /// float from r (one gather); then + bias, + C's old value when accumulating.</summary>
    private static void Store(Vector512<float>* acc, float* c, int ldc, int rows, int cols, float* bias,
        bool accumulate)
    {
        float* block = (float*)acc;
        var column = Vector256.Create(0, 32, 64, 96, 128, 160, 192, 224);
        for (int r = 0; r < rows; r++)
        {
            float* row = c + (long)r * ldc;
            if (cols == BlockColumns)
            {
                var v = Avx2.GatherVector256(block + r, column, 4);
                if (bias != null) v += Avx.LoadVector256(bias);
                if (accumulate) v += Avx.LoadVector256(row);
                Avx.Store(row, v);
            }
            else
                for (int j = 0; j < cols; j++)
                {
                    float v = block[j * PanelRows + r];
                    if (bias != null) v += bias[j];
                    row[j] = accumulate ? row[j] + v : v;
                }
        }
    }
}
