using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>
/// y[r, j] = bias[j] + Σ_k x[r, k] · w[j, k]: x [rows, in], w [out, in] (nn.Linear's layout, any
/// <see cref="IWeight"/>), y [rows, out]; hasBias = 0 skips the bias. The epilogue fuses the block's next step into
/// the same launch (<see cref="Epilogue"/>).
/// </summary>
public static class MatMul
{
    /// <summary>What the kernel does with r = x·wᵀ + b.</summary>
    public static class Epilogue
    {
        public const int Store = 0;   // y = r
        public const int Gelu = 1;    // y = gelu_new(r): the MLP's c_fc and its activation
        public const int Add = 2;     // y += r: a projection and its residual connection
    }

    private static void StoreOutput(ArrayView<float> y, long i, float r, int epilogue)
    {
        if (epilogue == Epilogue.Gelu) r = Kernels.Gelu.GeluNew(r);
        else if (epilogue == Epilogue.Add) r += y[i];
        y[i] = r;
    }

    // ---- decode: one row, bandwidth-bound ---------------------------------------------------------------------

    public const int VectorThreads = 64;

    /// <summary>
    /// rows = 1. A group of <see cref="VectorThreads"/> per output column j (grid-stride over the columns): the
    /// threads read w[j, :] with consecutive addresses and add their partial sums in shared memory.
    /// </summary>
    public static void Vector<TWeight>(ArrayView<float> x, ArrayView<TWeight> w, ArrayView<float> bias, int hasBias,
        ArrayView<float> y, int inDim, int outDim, int epilogue) where TWeight : unmanaged, IWeight
    {
        var scratch = SharedMemory.Allocate<float>(VectorThreads);
        int tid = Group.IdxX;
        for (int j = Grid.IdxX; j < outDim; j += Grid.DimX)
        {
            long w0 = (long)j * inDim;
            float s = 0f;
            for (int k = tid; k < inDim; k += VectorThreads) s += x[k] * w[w0 + k].Widen();
            float sum = GroupReduce.Sum(scratch, s, VectorThreads);
            if (tid == 0) StoreOutput(y, j, sum + (hasBias != 0 ? bias[j] : 0f), epilogue);
        }
    }

    /// <summary>
    /// rows = 1, a thread per output column (grid-stride), no shared memory and no barrier. For ILGPU's CPU
    /// accelerator, where one group barrier costs about a millisecond: <see cref="Vector"/> would spend seconds per
    /// token on barriers there. On a GPU <see cref="Vector"/> reads w with consecutive addresses and is the one used.
    /// </summary>
    public static void VectorPerThread<TWeight>(ArrayView<float> x, ArrayView<TWeight> w, ArrayView<float> bias,
        int hasBias, ArrayView<float> y, int inDim, int outDim, int epilogue) where TWeight : unmanaged, IWeight
    {
        for (int j = Grid.GlobalIndex.X; j < outDim; j += GridStride.Threads)
        {
            long w0 = (long)j * inDim;
            float s = 0f;
            for (int k = 0; k < inDim; k++) s += x[k] * w[w0 + k].Widen();
            StoreOutput(y, j, s + (hasBias != 0 ? bias[j] : 0f), epilogue);
        }
    }

    // ---- prefill: many rows, compute-bound -----------------------------------------------------------------------

    /// <summary>Each group computes a <see cref="Block"/> × <see cref="Block"/> block of the output.</summary>
    public const int Block = 64;
    /// <summary>The k-slice staged in shared memory per step.</summary>
    public const int Slice = 16;
    /// <summary>Threads per group: 16 × 16, each owning a 4 × 4 sub-block (rows ty + 16a, columns tx + 16b).</summary>
    public const int GroupSide = 16;
    /// <summary>Rows of the k-major shared tiles are padded to 65 floats, so the transposing stores spread over
    /// banks.</summary>
    internal const int Padded = Block + 1;
    /// <summary>The shared tiles for <see cref="MultiplySlice"/>: [Slice, Padded] floats each.</summary>
    internal const int TileLength = Slice * Padded;

    /// <summary>
    /// One <see cref="Slice"/>-wide step of a 4 × 4 register block: acc[u, v] += Σ_kk a[kk, ty + 16u] · b[kk, tx +
    /// 16v], from two slices staged k-major in shared memory. Four values of each slice per kk give sixteen
    /// multiply-adds, so each value fetched from global memory serves 64 of them. Shared with <see cref="Gemm"/>.
    /// </summary>
    internal static void MultiplySlice(ArrayView<float> a, ArrayView<float> b, int tx, int ty, ArrayView<float> acc)
    {
        for (int kk = 0; kk < Slice; kk++)
        {
            int row = kk * Padded;
            float a0 = a[row + ty], a1 = a[row + ty + 16], a2 = a[row + ty + 32], a3 = a[row + ty + 48];
            for (int v = 0; v < 4; v++)
            {
                float bv = b[row + tx + 16 * v];
                acc[v] += a0 * bv;
                acc[4 + v] += a1 * bv;
                acc[8 + v] += a2 * bv;
                acc[12 + v] += a3 * bv;
            }
        }
    }

    /// <summary>
    /// rows > 1. Groups of 16 × 16 walk the ⌈rows/64⌉ · ⌈out/64⌉ output blocks (grid-stride). Per step the 256
    /// threads stage a 64 × 16 slice of x and of w (element e = tid + 256 i is (row e / 16, k e % 16): consecutive
    /// threads read consecutive addresses), then each multiplies its 4 × 4 block (<see cref="MultiplySlice"/>).
    /// </summary>
    public static void Tiled<TWeight>(ArrayView<float> x, ArrayView<TWeight> w, ArrayView<float> bias, int hasBias,
        ArrayView<float> y, int rows, int inDim, int outDim, int epilogue) where TWeight : unmanaged, IWeight
    {
        var xs = SharedMemory.Allocate<float>(TileLength);   // xs[k, row] = x[r0 + row, k0 + k]
        var ws = SharedMemory.Allocate<float>(TileLength);   // ws[k, col] = w[j0 + col, k0 + k]
        var acc = LocalMemory.Allocate<float>(16);
        int tx = Group.IdxX, ty = Group.IdxY, tid = ty * GroupSide + tx;
        int columnBlocks = (outDim + Block - 1) / Block, blocks = columnBlocks * ((rows + Block - 1) / Block);
        for (int block = Grid.IdxX; block < blocks; block += Grid.DimX)
            TiledBlock(x, w, bias, hasBias, y, rows, inDim, outDim, epilogue, block / columnBlocks * Block,
                block % columnBlocks * Block, tx, ty, tid, xs, ws, acc);
    }

    private static void TiledBlock<TWeight>(ArrayView<float> x, ArrayView<TWeight> w, ArrayView<float> bias,
        int hasBias,
        ArrayView<float> y, int rows, int inDim, int outDim, int epilogue, int r0, int j0, int tx, int ty, int tid,
        ArrayView<float> xs, ArrayView<float> ws, ArrayView<float> acc) where TWeight : unmanaged, IWeight
    {
        for (int i = 0; i < 16; i++) acc[i] = 0f;
        for (int k0 = 0; k0 < inDim; k0 += Slice)
        {
            for (int i = 0; i < 4; i++)
            {
                int e = tid + 256 * i, row = e / Slice, kk = e % Slice, k = k0 + kk;
                xs[kk * Padded + row] = r0 + row < rows && k < inDim ? x[(long)(r0 + row) * inDim + k] : 0f;
                ws[kk * Padded + row] = j0 + row < outDim && k < inDim ? w[(long)(j0 + row) * inDim + k].Widen() : 0f;
            }
            Group.Barrier();
            MultiplySlice(xs, ws, tx, ty, acc);
            Group.Barrier();
        }
        for (int a = 0; a < 4; a++)
        {
            int r = r0 + ty + 16 * a;
            for (int b = 0; b < 4; b++)
            {
                int j = j0 + tx + 16 * b;
                if (r < rows && j < outDim)
                    StoreOutput(y, (long)r * outDim + j, acc[4 * a + b] + (hasBias != 0 ? bias[j] : 0f), epilogue);
            }
        }
    }
}
