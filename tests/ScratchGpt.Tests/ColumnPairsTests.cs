using System.Runtime.Intrinsics.X86;
using ScratchGpt.Backends.Cpu;

namespace ScratchGpt.Tests;

/// <summary>A one-row decode matmul takes its columns in pairs half a matrix apart (<see cref="ColumnPairs"/>); every
/// column must still get exactly the bits the column-by-column kernels give it, in every weight format, so a
/// sequence decodes the same alone as in a batch.</summary>
public class ColumnPairsTests
{
    [Theory]
    [InlineData(32, 2)]
    [InlineData(32, 3)]
    [InlineData(352, 13)]
    [InlineData(512, 66)]
    [InlineData(1024, 7)]
    public void Column_pairs_give_every_column_the_bits_of_the_column_by_column_matmul(int inDim, int outDim)
    {
        var rng = new Random(inDim * 31 + outDim);
        float[] R(int n, float scale) =>
            Enumerable.Range(0, n).Select(_ => (rng.NextSingle() * 2 - 1) * scale).ToArray();
        float[] w = R(inDim * outDim, 0.2f), x = R(inDim, 1f), bias = R(outDim, 1f);
        float[] want = new float[outDim];

        CpuKernels.MatMulColumns(x, w, bias, want, 1, inDim, outDim, 0, outDim);
        Assert.Equal(want, InBlocks(outDim, (y, j0, j1) => ColumnPairs.MatMul(x, w, bias, y, inDim, outDim, j0, j1)));

        var halves = Float16Weights.From(w);
        float[] paired = new float[inDim];
        CpuKernels.PairForHalfDot(x, paired);
        CpuKernels.MatMulColumnsHalfPaired(paired, halves.Halves.Span, halves.Scale, bias, want, 1, inDim, outDim, 0,
            outDim);
        Assert.Equal(want,
            InBlocks(outDim, (y, j0, j1) => ColumnPairs.MatMul(paired, halves, bias, y, inDim, outDim, j0, j1)));

        sbyte[] xq = new sbyte[inDim];
        float[] xd = new float[inDim / 32], xc = new float[inDim / 32];
        CpuKernels.QuantizeQ8(x, xq, xd);
        CpuKernels.Q4Offsets(xq, xd, xc);
        var q8 = Q8Weights.From(w);
        CpuKernels.MatMulColumnsQ8(xq, xd, q8, bias, want, 1, inDim, outDim, 0, outDim);
        Assert.Equal(want,
            InBlocks(outDim, (y, j0, j1) => ColumnPairs.MatMul(xq, xd, q8, bias, y, inDim, outDim, j0, j1)));
        var q4 = Q4Weights.From(w);
        CpuKernels.MatMulColumnsQ4(xq, xd, xc, q4, bias, want, 1, inDim, outDim, 0, outDim);
        Assert.Equal(want,
            InBlocks(outDim, (y, j0, j1) => ColumnPairs.MatMul(xq, xd, xc, q4, bias, y, inDim, outDim, j0, j1)));
    }

    /// <summary>The pairs 0 .. outDim / 2 in three blocks, as the backend hands them to its cores.</summary>
    private static float[] InBlocks(int outDim, Action<float[], int, int> pairs)
    {
        var y = new float[outDim];
        Array.Fill(y, float.NaN);
        int half = outDim / 2;
        for (int b = 0; b < 3; b++) pairs(y, half * b / 3, half * (b + 1) / 3);
        return y;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(8)]
    [InlineData(11)]
    [InlineData(24)]
    public unsafe void Two_row_block_sums_give_each_row_the_one_row_bits_at_every_vector_width(int blocks)
    {
        var rng = new Random(blocks);
        var bytes = new byte[2 * blocks * 32];
        rng.NextBytes(bytes);
        var qx = new sbyte[blocks * 32];
        for (int i = 0; i < qx.Length; i++) qx[i] = (sbyte)rng.Next(-127, 128);
        float[] F(int n) => Enumerable.Range(0, n).Select(_ => rng.NextSingle() * 0.01f).ToArray();
        float[] dx = F(blocks), c = F(blocks);
        // the weights' scales as float16 (Q8_0 with AVX-512 reads them so; some subnormal) and the same values as
        // float32: the widening is exact, so both give the same bits
        Half[] dh = Enumerable.Range(0, 2 * blocks).Select(i => (Half)(rng.NextSingle() * (i % 3 == 0 ? 1e-5f : 0.01f)))
            .ToArray();
        float[] dw = dh.Select(h => (float)h).ToArray();
        var forms = BlockSumForms<float>();
        var halfForms = BlockSumForms<Half>();
        Assert.True(forms.Count > 0 || !Avx2.IsSupported, "no vector form was checked");
        fixed (byte* w = bytes)
        fixed (sbyte* x = qx)
        fixed (float* d = dw, xd = dx, xc = c)
        fixed (Half* h = dh)
            for (int f = 0; f < forms.Count; f++)
            {
                var (name, rowBytes, two, one) = forms[f];
                var (_, _, twoHalf, oneHalf) = halfForms[f];
                // row b starts where row a ends (Q8_0: 32 bytes a block, Q4_0: 16); Q8_0 ignores the offsets c
                byte* wb = w + blocks * rowBytes;
                two(w, d, wb, d + blocks, x, xd, xc, blocks, out float a, out float b);
                Assert.True(one(w, d, x, xd, xc, blocks) == a, $"{name}: row a");
                Assert.True(one(wb, d + blocks, x, xd, xc, blocks) == b, $"{name}: row b");
                twoHalf(w, h, wb, h + blocks, x, xd, xc, blocks, out float ah, out float bh);
                Assert.True(ah == a && bh == b, $"{name}, float16 scales: {ah}, {bh} vs {a}, {b}");
                Assert.True(oneHalf(w, h, x, xd, xc, blocks) == a, $"{name}, float16 scales: row a");
            }
    }

    private unsafe delegate void TwoRowSum<TScale>(byte* wa, TScale* da, byte* wb, TScale* db, sbyte* xp, float* xd,
        float* c, int blocks, out float sa, out float sb) where TScale : unmanaged;

    private unsafe delegate float OneRowSum<TScale>(byte* w, TScale* d, sbyte* xp, float* xd, float* c, int blocks)
        where TScale : unmanaged;

    private static unsafe List<(string, int, TwoRowSum<TScale>, OneRowSum<TScale>)> BlockSumForms<TScale>()
        where TScale : unmanaged
    {
        var forms = new List<(string, int, TwoRowSum<TScale>, OneRowSum<TScale>)>();
        if (Avx512BW.IsSupported)
        {
            forms.Add(("Q8_0, 512 bits", 32,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q8, QuantizedBlocks.TwoRows, TScale>,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q8, TScale>));
            forms.Add(("Q4_0, 512 bits", 16,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q4, QuantizedBlocks.TwoRows, TScale>,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q4, TScale>));
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            forms.Add(("Q8_0, 256 bits", 32,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q8, QuantizedBlocks.TwoRows, TScale>,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q8, TScale>));
            forms.Add(("Q4_0, 256 bits", 16,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q4, QuantizedBlocks.TwoRows, TScale>,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q4, TScale>));
        }
        return forms;
    }

    [Fact]
    public unsafe void Scales_widen_from_float16_exactly_for_every_half()
    {
        if (!Avx2.IsSupported)
            return;   // the widening is a 256-bit form; without AVX2 the kernels read (float)h one at a time
        var all = new ushort[65536];
        for (int i = 0; i < all.Length; i++) all[i] = (ushort)i;
        fixed (ushort* p = all)
            for (int i = 0; i < all.Length; i += 8)
            {
                var wide = QuantizedBlocks.WidenScales(p + i);
                for (int l = 0; l < 8; l++)
                {
                    float want = (float)BitConverter.UInt16BitsToHalf((ushort)(i + l));
                    Assert.True(float.IsNaN(want) ? float.IsNaN(wide[l])
                        : BitConverter.SingleToInt32Bits(wide[l]) == BitConverter.SingleToInt32Bits(want),
                        $"half 0x{i + l:X4}: {wide[l]} vs {want}");
                }
            }
    }
}
