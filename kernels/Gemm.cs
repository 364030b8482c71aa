using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>The training products of a linear layer y = x·Wᵀ + b, and the bias gradient.</summary>
public static class Gemm
{
    /// <summary>
    /// c[i, j] = (accumulate ? c[i, j] : 0) + Σ_k A(i, k) · B(k, j), c [m, n], with A(i, k) = a[i·aRow + k·aCol] and
    /// B(k, j) = b[k·bRow + j·bCol]. The strides let one kernel serve the three products (x [N, in], W [out, in]):
    /// forward y = x·Wᵀ, dx = dy·W and dW += dyᵀ·x. Blocked as <see cref="MatMul.Tiled"/> (groups of 16 × 16 walk
    /// the 64 × 64 blocks of c); each c[i, j] still sums k in order, so a step gives the same numbers on every run.
    /// </summary>
    public static void Strided(ArrayView<float> a, int aRow, int aCol, ArrayView<float> b, int bRow, int bCol,
        ArrayView<float> c, int m, int n, int k, int accumulate)
    {
        var at = SharedMemory.Allocate<float>(MatMul.TileLength);   // at[kk, row] = A(i0 + row, k0 + kk)
        var bt = SharedMemory.Allocate<float>(MatMul.TileLength);   // bt[kk, col] = B(k0 + kk, j0 + col)
        var acc = LocalMemory.Allocate<float>(16);
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * MatMul.GroupSide + tx;
        int columnBlocks = (n + MatMul.Block - 1) / MatMul.Block,
            blocks = columnBlocks * ((m + MatMul.Block - 1) / MatMul.Block);
        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
            StridedBlock(a, aRow, aCol, b, bRow, bCol, c, m, n, k, accumulate, block / columnBlocks * MatMul.Block,
                block % columnBlocks * MatMul.Block, tx, ty, tid, at, bt, acc);
    }

    private static void StridedBlock(ArrayView<float> a, int aRow, int aCol, ArrayView<float> b, int bRow, int bCol,
        ArrayView<float> c, int m, int n, int k, int accumulate, int i0, int j0, int tx, int ty, int tid,
        ArrayView<float> at, ArrayView<float> bt, ArrayView<float> acc)
    {
        const int padded = MatMul.Padded;
        for (int i = 0; i < 16; i++) acc[i] = 0f;
        for (int k0 = 0; k0 < k; k0 += MatMul.Slice)
        {
            for (int l = 0; l < 4; l++)
            {
                int e = tid + 256 * l;
                int row = e / MatMul.Slice, ka = e % MatMul.Slice;   // A's slice: consecutive threads along k
                at[ka * padded + row] = i0 + row < m && k0 + ka < k
                    ? a[(long)(i0 + row) * aRow + (long)(k0 + ka) * aCol] : 0f;
                int kb = e / MatMul.Block, col = e % MatMul.Block;   // B's slice: consecutive threads along j
                bt[kb * padded + col] = k0 + kb < k && j0 + col < n
                    ? b[(long)(k0 + kb) * bRow + (long)(j0 + col) * bCol] : 0f;
            }
            Group.Barrier();
            MatMul.MultiplySlice(at, bt, tx, ty, acc);
            Group.Barrier();
        }
        for (int u = 0; u < 4; u++)
        {
            int i = i0 + ty + 16 * u;
            for (int v = 0; v < 4; v++)
            {
                int j = j0 + tx + 16 * v;
                if (i < m && j < n)
                {
                    long index = (long)i * n + j;
                    c[index] = accumulate != 0 ? c[index] + acc[4 * u + v] : acc[4 * u + v];
                }
            }
        }
    }

    /// <summary>db[j] += Σ_r dy[r, j] (a bias's gradient): one thread per column, rows in order.</summary>
    public static void ColumnSums(ArrayView<float> dy, ArrayView<float> db, int rows, int cols)
    {
        for (int j = Grid.GlobalIndex.X; j < cols; j += GridStride.Threads)
        {
            float s = 0f;
            for (int r = 0; r < rows; r++) s += dy[(long)r * cols + j];
            db[j] += s;
        }
    }
}
