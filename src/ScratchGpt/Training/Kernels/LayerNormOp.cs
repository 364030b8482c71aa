namespace ScratchGpt.Training.Kernels;

/// <summary>
/// LayerNorm over each row of [N, E], forward and backward:
///
///     x̂ = (x − μ) · rstd,   rstd = 1/√(σ² + ε)        y = γ ⊙ x̂ + β
///
/// The forward keeps μ and rstd per row for the backward, which is
///
///     dγ += Σ_rows dy ⊙ x̂,   dβ += Σ_rows dy
///     dx  = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),   g = dy ⊙ γ
/// </summary>
public static class LayerNormOp
{
    public static void Forward(ReadOnlyMemory<float> x, ReadOnlyMemory<float> gamma, ReadOnlyMemory<float> beta,
        Memory<float> y, Memory<float> mean, Memory<float> rstd, int rows, int dim, float eps)
    {
        Parallel.For(0, rows, r =>
        {
            var row = x.Span.Slice(r * dim, dim);
            float mu = 0;
            for (int i = 0; i < dim; i++) mu += row[i];
            mu /= dim;
            float variance = 0;
            for (int i = 0; i < dim; i++) { float d = row[i] - mu; variance += d * d; }
            float s = 1f / MathF.Sqrt(variance / dim + eps);
            var g = gamma.Span; var b = beta.Span; var yr = y.Span.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++) yr[i] = (row[i] - mu) * s * g[i] + b[i];
            mean.Span[r] = mu; rstd.Span[r] = s;
        });
    }

    /// <summary>dx is overwritten when <paramref name="accumulate"/> is false, otherwise added to (the residual
    /// stream's gradient).</summary>
    public static void Backward(ReadOnlyMemory<float> dy, ReadOnlyMemory<float> x, ReadOnlyMemory<float> gamma,
        ReadOnlyMemory<float> mean, ReadOnlyMemory<float> rstd, Memory<float> dx, Memory<float> dGamma,
        Memory<float> dBeta, int rows, int dim, bool accumulate)
    {
        Parallel.For(0, rows, r =>
        {
            var dyr = dy.Span.Slice(r * dim, dim); var xr = x.Span.Slice(r * dim, dim); var g = gamma.Span;
            float mu = mean.Span[r], s = rstd.Span[r];
            float meanG = 0, meanGX = 0;
            for (int i = 0; i < dim; i++)
            {
                float gi = dyr[i] * g[i];
                meanG += gi;
                meanGX += gi * (xr[i] - mu) * s;
            }
            meanG /= dim; meanGX /= dim;
            var dxr = dx.Span.Slice(r * dim, dim);
            for (int i = 0; i < dim; i++)
            {
                float xhat = (xr[i] - mu) * s;
                float v = s * (dyr[i] * g[i] - meanG - xhat * meanGX);
                dxr[i] = accumulate ? dxr[i] + v : v;
            }
        });
        // The parameter gradients sum over rows; one pass, in row order, so the result is deterministic.
        var dg = dGamma.Span; var db = dBeta.Span;
        for (int r = 0; r < rows; r++)
        {
            var dyr = dy.Span.Slice(r * dim, dim); var xr = x.Span.Slice(r * dim, dim);
            float mu = mean.Span[r], s = rstd.Span[r];
            for (int i = 0; i < dim; i++) { dg[i] += dyr[i] * (xr[i] - mu) * s; db[i] += dyr[i]; }
        }
    }
}
