using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>The optimiser's kernels: AdamW, and the sums of squares behind the gradient norm.</summary>
public static class Optimizer
{
    /// <summary>
    /// AdamW (decoupled weight decay), one thread per parameter, as torch.optim.AdamW:
    ///   g = grad · gradScale,  m = β₁ m + (1 − β₁) g,  v = β₂ v + (1 − β₂) g²
    ///   p = p · decay − lr · (m / c₁) / (√(v / c₂) + eps)
    /// </summary>
    public static void AdamW(ArrayView<float> p, ArrayView<float> grad, ArrayView<float> m, ArrayView<float> v, int n,
        AdamWStep s)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += GridStride.Threads)
        {
            float g = grad[i] * s.GradScale;
            float mi = s.Beta1 * m[i] + (1f - s.Beta1) * g;
            float vi = s.Beta2 * v[i] + (1f - s.Beta2) * g * g;
            m[i] = mi;
            v[i] = vi;
            p[i] = p[i] * s.Decay - s.LearningRate * (mi / s.Correction1) / (XMath.Sqrt(vi / s.Correction2)
                + s.Epsilon);
        }
    }

    public const int SumSquaresThreads = 256;
    public const int SumSquaresGroups = 64;

    /// <summary>
    /// partial[slot · 64 + part] = Σ x[i]² over part's strided share of x, for 64 parts of 256 threads (groups walk
    /// the parts, grid-stride). The host adds the partials (in double) for the global gradient norm.
    /// </summary>
    public static void SumSquares(ArrayView<float> x, int n, ArrayView<float> partial, int slot)
    {
        var scratch = SharedMemory.Allocate<float>(SumSquaresThreads);
        int tid = Group.IdxX;
        for (int part = Grid.IdxX; part < SumSquaresGroups; part += Grid.DimX)
        {
            float s = 0f;
            for (int i = part * SumSquaresThreads + tid; i < n; i += SumSquaresGroups * SumSquaresThreads)
                s += x[i] * x[i];
            float total = GroupReduce.Sum(scratch, s, SumSquaresThreads);
            if (tid == 0) partial[slot * SumSquaresGroups + part] = total;
        }
    }
}
