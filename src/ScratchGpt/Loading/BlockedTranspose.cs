namespace ScratchGpt.Loading;

/// <summary>
/// dst[c, r] = src[r, c] for a [rows, cols] matrix, in 32×32 blocks so both sides stay in cache, bands of rows
/// on all cores. The loader needs it for GPT-2's Conv1D weights ([in, out] in the file, [out, in] in memory);
/// training uses it for its transposed operands.
/// </summary>
public static class BlockedTranspose
{
    public static void Transpose(ReadOnlyMemory<float> src, Memory<float> dst, int rows, int cols)
    {
        const int B = 32;
        void Band(int bi)
        {
            var s = src.Span; var d = dst.Span;
            int r0 = bi * B, r1 = Math.Min(rows, r0 + B);
            for (int c0 = 0; c0 < cols; c0 += B)
            {
                int c1 = Math.Min(cols, c0 + B);
                for (int r = r0; r < r1; r++)
                    for (int c = c0; c < c1; c++)
                        d[c * rows + r] = s[r * cols + c];
            }
        }
        int bands = (rows + B - 1) / B;
        if ((long)rows * cols < 1 << 16) for (int bi = 0; bi < bands; bi++) Band(bi);
        else Parallel.For(0, bands, Band);
    }

    public static float[] Transposed(float[] src, int rows, int cols)
    {
        var dst = new float[src.Length];
        Transpose(src, dst, rows, cols);
        return dst;
    }
}
