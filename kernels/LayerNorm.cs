using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// Layer normalisation and its gradients. Forward and the input gradient: one group of <see cref="Threads"/> per
/// row (grid-stride over the rows), sums by <see cref="GroupReduce"/>. The parameter gradients: one thread per column.
/// </summary>
public static class LayerNorm
{
    public const int Threads = 128;

    /// <summary>
    /// y[r, :] = (x[r, :] − mean) / √(var + eps) · gamma + beta (biased variance). With saveStats ≠ 0,
    /// mean[r] and rstd[r] = 1/√(var + eps) are kept for the backward pass.
    /// </summary>
    public static void Forward(ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        ArrayView<float> meanOut, ArrayView<float> rstdOut, int saveStats, int rows, int dim, float eps)
    {
        var scratch = SharedMemory.Allocate<float>(Threads);
        int tid = Group.IdxX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            long r0 = (long)row * dim;
            float s = 0f;
            for (int i = tid; i < dim; i += Threads) s += x[r0 + i];
            float mean = GroupReduce.Sum(scratch, s, Threads) / dim;
            float v = 0f;
            for (int i = tid; i < dim; i += Threads) { float d = x[r0 + i] - mean; v += d * d; }
            float rstd = 1f / XMath.Sqrt(GroupReduce.Sum(scratch, v, Threads) / dim + eps);
            for (int i = tid; i < dim; i += Threads) y[r0 + i] = (x[r0 + i] - mean) * rstd * gamma[i] + beta[i];
            if (saveStats != 0 && tid == 0) { meanOut[row] = mean; rstdOut[row] = rstd; }
        }
    }

    /// <summary>
    /// dx for one row from dy and the saved statistics:
    ///   x̂ = (x − mean) · rstd,  g = dy · gamma,  dx = rstd · (g − mean(g) − x̂ · mean(g · x̂))
    /// accumulate ≠ 0 adds dx to what is there (the residual stream's gradient).
    /// </summary>
    public static void Backward(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> dx, int rows, int dim, int accumulate)
    {
        var scratch = SharedMemory.Allocate<float>(Threads);
        int tid = Group.IdxX;
        for (int row = Grid.IdxX; row < rows; row += Grid.DimX)
        {
            long r0 = (long)row * dim;
            float mu = mean[row], s = rstd[row];
            float sg = 0f, sgx = 0f;
            for (int i = tid; i < dim; i += Threads)
            {
                float g = dy[r0 + i] * gamma[i];
                sg += g;
                sgx += g * (x[r0 + i] - mu) * s;
            }
            float meanG = GroupReduce.Sum(scratch, sg, Threads) / dim;
            float meanGx = GroupReduce.Sum(scratch, sgx, Threads) / dim;
            for (int i = tid; i < dim; i += Threads)
            {
                float v = s * (dy[r0 + i] * gamma[i] - meanG - (x[r0 + i] - mu) * s * meanGx);
                dx[r0 + i] = accumulate != 0 ? dx[r0 + i] + v : v;
            }
        }
    }

    /// <summary>dgamma[j] += Σ_r dy[r, j] · x̂[r, j], dbeta[j] += Σ_r dy[r, j]: one thread per column, rows in
    /// order.</summary>
    public static void ParameterGradients(ArrayView<float> dy, ArrayView<float> x, ArrayView<float> mean,
        ArrayView<float> rstd, ArrayView<float> dgamma, ArrayView<float> dbeta, int rows, int dim)
    {
        for (int j = Grid.GlobalIndex.X; j < dim; j += GridStride.Threads)
        {
            float g = 0f, b = 0f;
            for (int r = 0; r < rows; r++)
            {
                float d = dy[(long)r * dim + j];
                g += d * (x[(long)r * dim + j] - mean[r]) * rstd[r];
                b += d;
            }
            dgamma[j] += g;
            dbeta[j] += b;
        }
    }
}
