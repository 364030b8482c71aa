using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>Token and position embeddings, and their gradient.</summary>
public static class Embedding
{
    /// <summary>
    /// x[t, i] = wte[ids[t], i] + wpe[start + t mod seq, i]   (x: [rows, dim]; seq = rows for one sequence, and a
    /// training batch of B sequences restarts the positions every seq rows). One thread per element, groups of 256.
    /// </summary>
    public static void Forward<TWeight>(ArrayView<int> ids, int start, int seq, ArrayView<TWeight> wte,
        ArrayView<float> wpe, ArrayView<float> x, int rows, int dim) where TWeight : unmanaged, IWeight
    {
        for (int g = Grid.GlobalIndex.X; g < rows * dim; g += GridStride.Threads)
        {
            int t = g / dim, i = g % dim;
            x[g] = wte[(long)ids[t] * dim + i].Widen() + wpe[(long)(start + t % seq) * dim + i];
        }
    }

    /// <summary>
    /// dwte[ids[t], i] += dx[t, i] and dwpe[t mod seq, i] += dx[t, i]. One thread per column i walking the rows in
    /// order: a repeated token adds into the same row without atomics, and the sum is the same on every run.
    /// </summary>
    public static void Backward(ArrayView<int> ids, ArrayView<float> dx, ArrayView<float> dwte, ArrayView<float> dwpe,
        int rows, int seq, int dim)
    {
        for (int i = Grid.GlobalIndex.X; i < dim; i += GridStride.Threads)
            for (int t = 0; t < rows; t++)
            {
                float d = dx[t * dim + i];
                dwte[(long)ids[t] * dim + i] += d;
                dwpe[(t % seq) * dim + i] += d;
            }
    }
}
