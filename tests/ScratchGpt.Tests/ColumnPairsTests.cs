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
        float[] dw = F(2 * blocks), dx = F(blocks), c = F(blocks);
        var forms = BlockSumForms();
        Assert.True(forms.Count > 0 || !Avx2.IsSupported, "no vector form was checked");
        fixed (byte* w = bytes)
        fixed (sbyte* x = qx)
        fixed (float* d = dw, xd = dx, xc = c)
            foreach (var (name, rowBytes, two, one) in forms)
            {
                // row b starts where row a ends (Q8_0: 32 bytes a block, Q4_0: 16); Q8_0 ignores the offsets c
                byte* wb = w + blocks * rowBytes;
                float* db = d + blocks;
                two(w, d, wb, db, x, xd, xc, blocks, out float a, out float b);
                Assert.True(one(w, d, x, xd, xc, blocks) == a, $"{name}: row a");
                Assert.True(one(wb, db, x, xd, xc, blocks) == b, $"{name}: row b");
            }
    }

    private unsafe delegate void TwoRowSum(byte* wa, float* da, byte* wb, float* db, sbyte* xp, float* xd, float* c,
        int blocks, out float sa, out float sb);

    private unsafe delegate float OneRowSum(byte* w, float* d, sbyte* xp, float* xd, float* c, int blocks);

    private static unsafe List<(string, int, TwoRowSum, OneRowSum)> BlockSumForms()
    {
        var forms = new List<(string, int, TwoRowSum, OneRowSum)>();
        if (Avx512BW.IsSupported)
        {
            forms.Add(("Q8_0, 512 bits", 32, QuantizedBlocks.Sum512<QuantizedBlocks.Q8, QuantizedBlocks.TwoRows>,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q8>));
            forms.Add(("Q4_0, 512 bits", 16, QuantizedBlocks.Sum512<QuantizedBlocks.Q4, QuantizedBlocks.TwoRows>,
                QuantizedBlocks.Sum512<QuantizedBlocks.Q4>));
        }
        if (Avx2.IsSupported && Fma.IsSupported)
        {
            forms.Add(("Q8_0, 256 bits", 32, QuantizedBlocks.Sum256<QuantizedBlocks.Q8, QuantizedBlocks.TwoRows>,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q8>));
            forms.Add(("Q4_0, 256 bits", 16, QuantizedBlocks.Sum256<QuantizedBlocks.Q4, QuantizedBlocks.TwoRows>,
                QuantizedBlocks.Sum256<QuantizedBlocks.Q4>));
        }
        return forms;
    }
}
