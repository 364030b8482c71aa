using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// The one matrix product training needs, C[M, N] (+)= A[M, K] · B[N, K]ᵀ (+ bias[N]), with both
/// operands row-major along K so every inner loop is a contiguous dot product. A linear layer's
/// three products all take this form once the right operand is transposed:
///
///     forward   y  = x · Wᵀ          A = x  [N, in],    B = W  [out, in]
///     input     dx = dy · W          A = dy [N, out],   B = Wᵀ [in, out]
///     weight    dW = dyᵀ · x         A = dyᵀ [out, N],  B = xᵀ [in, N]
///
/// On CPUs with AVX2 + FMA, products of at least one panel of rows (32 with AVX-512, 16 with AVX2) go to
/// <see cref="PackedGemm"/> (outer products, a 32×8 or 16×6 block of C in registers). Otherwise the work is split
/// into 64×64 tiles of C across all cores; inside a tile a 4×4 block of C is kept in 16 vector accumulators, so each
/// pair of loads feeds four FMAs instead of one.
/// </summary>
public static class Gemm
{
    private const int Tile = 64;

    public static void MatMulNT(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, Memory<float> c, int m, int n, int k,
        ReadOnlyMemory<float> bias = default, bool accumulate = false)
    {
        if (UsePanels(m)) PackedGemm.MatMulNT(a, b, null, c, m, n, k, bias, accumulate);
        else MatMulNTTiles(a, b, c, m, n, k, bias, accumulate);
    }

    /// <summary>The dot-product tiles alone: what runs without AVX2 or below a panel of rows (the tests call it
    /// directly, so it stays checked on CPUs that would never pick it).</summary>
    internal static void MatMulNTTiles(ReadOnlyMemory<float> a, ReadOnlyMemory<float> b, Memory<float> c, int m, int n,
        int k, ReadOnlyMemory<float> bias, bool accumulate)
    {
        int tilesM = (m + Tile - 1) / Tile, tilesN = (n + Tile - 1) / Tile;
        void RunTile(int t)
        {
            int i0 = t / tilesN * Tile, j0 = t % tilesN * Tile;
            TileProduct(a.Span, b.Span, 0, c.Span, bias.Span, i0, Math.Min(m, i0 + Tile), j0, Math.Min(n, j0 + Tile), n,
                k, accumulate);
        }
        if ((long)m * n * k < 1 << 18) for (int t = 0; t < tilesM * tilesN; t++) RunTile(t);
        else ForkJoin.For(tilesM * tilesN, RunTile);
    }

    /// <summary>The plain triple loop, kept as the reference both fast versions are tested against.</summary>
    public static void MatMulNTReference(ReadOnlySpan<float> a, ReadOnlySpan<float> b, Span<float> c, int m, int n,
        int k, ReadOnlySpan<float> bias = default, bool accumulate = false)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = bias.IsEmpty ? 0 : bias[j];
                for (int p = 0; p < k; p++) s += a[i * k + p] * b[j * k + p];
                c[i * n + j] = (float)(accumulate ? c[i * n + j] + s : s);
            }
    }

    /// <summary>
    /// The same product with float16 B (weights kept 16-bit in memory): each block of rows of B (64 for the tiles,
    /// 8 or 6 for the panels) is widened once into a float32 scratch, then every row of A runs against it, so the
    /// widening is paid once per weight, not once per input row.
    /// </summary>
    public static void MatMulNT(ReadOnlyMemory<float> a, Float16Weights b, Memory<float> c, int m, int n, int k,
        ReadOnlyMemory<float> bias = default) =>
        MatMulNTWidening(a, c, m, n, k, bias, (j0, count, dst) => b.WidenRows(j0, count, k, dst));

    /// <summary>The same with Q8_0 B: each block of rows is dequantized (d · q) into the scratch.</summary>
    public static void MatMulNT(ReadOnlyMemory<float> a, Q8Weights b, Memory<float> c, int m, int n, int k,
        ReadOnlyMemory<float> bias = default) =>
        MatMulNTWidening(a, c, m, n, k, bias, (j0, count, dst) =>
        {
            for (int j = 0; j < count; j++) b.Dequantize(j0 + j, k, dst.Slice(j * k, k));
        });

    /// <summary>The same with Q4_0 B: each block of rows is dequantized (d · (q − 8)) into the scratch.</summary>
    public static void MatMulNT(ReadOnlyMemory<float> a, Q4Weights b, Memory<float> c, int m, int n, int k,
        ReadOnlyMemory<float> bias = default) =>
        MatMulNTWidening(a, c, m, n, k, bias, (j0, count, dst) =>
        {
            for (int j = 0; j < count; j++) b.Dequantize(j0 + j, k, dst.Slice(j * k, k));
        });

    /// <summary>Writes rows j0 .. j0+count−1 of B, widened to float32, into <paramref name="dst"/>
    /// (count × K).</summary>
    internal delegate void WidenRows(int j0, int count, Span<float> dst);

    /// <summary>The outer-product kernel (<see cref="PackedGemm"/>) where the CPU has it and A has at least one
    /// full panel of rows; the dot-product tiles otherwise.</summary>
    private static bool UsePanels(int m) => PackedGemm.IsSupported && m >= PackedGemm.Native.PanelRows;

    private static void MatMulNTWidening(ReadOnlyMemory<float> a, Memory<float> c, int m, int n, int k,
        ReadOnlyMemory<float> bias, WidenRows widen)
    {
        if (UsePanels(m))
        {
            PackedGemm.MatMulNT(a, default, widen, c, m, n, k, bias, accumulate: false);
            return;
        }
        int blocks = (n + Tile - 1) / Tile;
        ForkJoin.For(blocks, blk =>
        {
            int j0 = blk * Tile, j1 = Math.Min(n, j0 + Tile);
            float[] scratch = System.Buffers.ArrayPool<float>.Shared.Rent((j1 - j0) * k);
            try
            {
                widen(j0, j1 - j0, scratch.AsSpan(0, (j1 - j0) * k));
                for (int i0 = 0; i0 < m; i0 += Tile)
                    TileProduct(a.Span, scratch, j0, c.Span, bias.Span, i0, Math.Min(m, i0 + Tile), j0, j1, n, k,
                        accumulate: false);
            }
            finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
        });
    }

    /// <summary>C tile [i0, i1) × [j0, j1); row j of B is at b[(j − bRow0)·k].</summary>
    private static void TileProduct(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int bRow0, Span<float> c,
        ReadOnlySpan<float> bias, int i0, int i1, int j0, int j1, int n, int k, bool accumulate)
    {
        Span<float> block = stackalloc float[16];
        int i = i0;
        for (; i + 4 <= i1; i += 4)
        {
            int j = j0;
            for (; j + 4 <= j1; j += 4)
            {
                Dot4x4(a.Slice(i * k, 4 * k), b.Slice((j - bRow0) * k, 4 * k), k, block);
                for (int r = 0; r < 4; r++)
                    for (int q = 0; q < 4; q++)
                        Store(c, bias, (i + r) * n + j + q, j + q, block[r * 4 + q], accumulate);
            }
            for (; j < j1; j++)
                for (int r = 0; r < 4; r++)
                    Store(c, bias, (i + r) * n + j, j, Dot(a.Slice((i + r) * k, k), b.Slice((j - bRow0) * k, k)),
                        accumulate);
        }
        for (; i < i1; i++)
            for (int j = j0; j < j1; j++)
                Store(c, bias, i * n + j, j, Dot(a.Slice(i * k, k), b.Slice((j - bRow0) * k, k)), accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(Span<float> c, ReadOnlySpan<float> bias, int index, int column, float value,
        bool accumulate)
    {
        if (!bias.IsEmpty) value += bias[column];
        c[index] = accumulate ? c[index] + value : value;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector256<float> MulAdd(Vector256<float> x, Vector256<float> y, Vector256<float> acc) =>
        Fma.IsSupported ? Fma.MultiplyAdd(x, y, acc) : x * y + acc;

    /// <summary>out[r·4 + q] = dot(a row r, b row q) for four rows of each, all of length k.</summary>
    private static void Dot4x4(ReadOnlySpan<float> a, ReadOnlySpan<float> b, int k, Span<float> result)
    {
        ref float pa = ref MemoryMarshal.GetReference(a);
        ref float pb = ref MemoryMarshal.GetReference(b);
        nuint K = (nuint)k;
        Vector256<float> c00 = default, c01 = default, c02 = default, c03 = default;
        Vector256<float> c10 = default, c11 = default, c12 = default, c13 = default;
        Vector256<float> c20 = default, c21 = default, c22 = default, c23 = default;
        Vector256<float> c30 = default, c31 = default, c32 = default, c33 = default;
        nuint p = 0;
        for (; p + 8 <= K; p += 8)
        {
            var b0 = Vector256.LoadUnsafe(ref pb, p); var b1 = Vector256.LoadUnsafe(ref pb, K + p);
            var b2 = Vector256.LoadUnsafe(ref pb, 2 * K + p); var b3 = Vector256.LoadUnsafe(ref pb, 3 * K + p);
            var a0 = Vector256.LoadUnsafe(ref pa, p);
            c00 = MulAdd(a0, b0, c00); c01 = MulAdd(a0, b1, c01); c02 = MulAdd(a0, b2, c02); c03 = MulAdd(a0, b3, c03);
            var a1 = Vector256.LoadUnsafe(ref pa, K + p);
            c10 = MulAdd(a1, b0, c10); c11 = MulAdd(a1, b1, c11); c12 = MulAdd(a1, b2, c12); c13 = MulAdd(a1, b3, c13);
            var a2 = Vector256.LoadUnsafe(ref pa, 2 * K + p);
            c20 = MulAdd(a2, b0, c20); c21 = MulAdd(a2, b1, c21); c22 = MulAdd(a2, b2, c22); c23 = MulAdd(a2, b3, c23);
            var a3 = Vector256.LoadUnsafe(ref pa, 3 * K + p);
            c30 = MulAdd(a3, b0, c30); c31 = MulAdd(a3, b1, c31); c32 = MulAdd(a3, b2, c32); c33 = MulAdd(a3, b3, c33);
        }
        result[0] = Vector256.Sum(c00);
        result[1] = Vector256.Sum(c01);
        result[2] = Vector256.Sum(c02);
        result[3] = Vector256.Sum(c03);
        result[4] = Vector256.Sum(c10);
        result[5] = Vector256.Sum(c11);
        result[6] = Vector256.Sum(c12);
        result[7] = Vector256.Sum(c13);
        result[8] = Vector256.Sum(c20);
        result[9] = Vector256.Sum(c21);
        result[10] = Vector256.Sum(c22);
        result[11] = Vector256.Sum(c23);
        result[12] = Vector256.Sum(c30);
        result[13] = Vector256.Sum(c31);
        result[14] = Vector256.Sum(c32);
        result[15] = Vector256.Sum(c33);
        for (; p < K; p++)
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    result[r * 4 + q] += Unsafe.Add(ref pa, (nint)((nuint)r * K + p)) * Unsafe.Add(ref pb,
                        (nint)((nuint)q * K + p));
    }

    private static float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => CpuKernels.Dot(x, y);

    /// <summary>sums[j] += Σ_r x[r, j]: the gradient of a bias broadcast over rows.</summary>
    public static void AddColumnSums(ReadOnlySpan<float> x, Span<float> sums, int rows, int cols)
    {
        for (int r = 0; r < rows; r++)
            System.Numerics.Tensors.TensorPrimitives.Add(sums, x.Slice(r * cols, cols), sums);
    }
}
