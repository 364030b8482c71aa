using ScratchGpt.Loading;
using ScratchGpt.Backends.Cpu;
namespace ScratchGpt.Training.Kernels;

/// <summary>
/// The tied LM head and the loss in one pass, forward and backward, a chunk of rows at a time so the
/// [rows, V] logits never exist for the whole batch:
///
///     logits = x · wteᵀ                    [R, V]
///     loss   = mean over targets of  logsumexp(logits) − logits[target]
///     dlogits = (softmax(logits) − onehot(target)) / count
///     dx      = dlogits · wte              [R, E]
///     dwte   += dlogitsᵀ · x               [V, E]
///
/// Rows whose target is negative (no next token) are skipped, like the -100 labels of transformers.
/// </summary>
public sealed class CrossEntropyHead
{
    private const int ChunkRows = 256;
    private readonly int _vocab, _dim;
    private readonly float[] _logits, _logitsT, _xT, _wteT;

    public CrossEntropyHead(int vocab, int dim)
    {
        _vocab = vocab; _dim = dim;
        _logits = new float[ChunkRows * vocab];
        _logitsT = new float[ChunkRows * vocab];
        _xT = new float[ChunkRows * dim];
        _wteT = new float[vocab * dim];
    }

    /// <summary>Returns the summed loss (in nats) over rows with a target. With gradients, dx is
    /// overwritten and dwte accumulated, for a loss that weights each row's term by
    /// <paramref name="gradWeight"/> (1/targets for a mean).</summary>
    public double Run(ReadOnlyMemory<float> x, ReadOnlyMemory<int> targets, ReadOnlyMemory<float> wte, int rows,
        Memory<float> dx, Memory<float> dWte, float gradWeight)
    {
        bool backward = !dx.IsEmpty;
        if (backward) BlockedTranspose.Transpose(wte, _wteT, _vocab, _dim);
        double total = 0;
        for (int r0 = 0; r0 < rows; r0 += ChunkRows)
        {
            int n = Math.Min(ChunkRows, rows - r0);
            var xc = x.Slice(r0 * _dim, n * _dim);
            var logits = _logits.AsMemory(0, n * _vocab);
            Gemm.MatMulNT(xc, wte, logits, n, _vocab, _dim);
            var losses = new double[n];
            Parallel.For(0, n, r =>
            {
                int target = targets.Span[r0 + r];
                var row = logits.Span.Slice(r * _vocab, _vocab);
                if (target < 0) { if (backward) row.Clear(); return; }
                float max = System.Numerics.Tensors.TensorPrimitives.Max(row);
                float targetLogit = row[target];
                double sum = 0;
                for (int v = 0; v < row.Length; v++) { row[v] = MathF.Exp(row[v] - max); sum += row[v]; }
                // loss = logsumexp − logit[target] = log(sum) − (logit[target] − max)
                losses[r] = Math.Log(sum) - (targetLogit - max);
                if (!backward) return;
                System.Numerics.Tensors.TensorPrimitives.Multiply(row, (float)(gradWeight / sum), row);
                row[target] -= gradWeight;
            });
            foreach (double l in losses) total += l;
            if (!backward) continue;
            Gemm.MatMulNT(logits, _wteT, dx.Slice(r0 * _dim, n * _dim), n, _dim, _vocab);
            BlockedTranspose.Transpose(logits, _logitsT.AsMemory(0, n * _vocab), n, _vocab);
            BlockedTranspose.Transpose(xc, _xT.AsMemory(0, n * _dim), n, _dim);
            Gemm.MatMulNT(_logitsT.AsMemory(0, _vocab * n), _xT.AsMemory(0, _dim * n), dWte, _vocab, _dim, n,
                accumulate: true);
        }
        return total;
    }
}
