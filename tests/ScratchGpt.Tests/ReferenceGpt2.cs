using ScratchGpt.Training;

namespace ScratchGpt.Tests;

/// <summary>
/// An independent, plain, double-precision GPT-2 loss, written without any of the runtime's kernels.
/// Central finite differences of it give gradients to about 1e-9, against which the runtime's float
/// backward pass is checked.
/// </summary>
public static class ReferenceGpt2
{
    public static double Loss(Gpt2Parameters p, double[] v, int[] ids, int[] targets, int batch, int seq)
    {
        var c = p.Config;
        int E = c.NEmbd, M = c.MlpWidth, H = c.NHead, D = c.HeadDim;
        double total = 0; int count = 0;
        double W(ParameterTensor t, int i) => v[t.Offset + i];
        for (int b = 0; b < batch; b++)
        {
            var x = new double[seq, E];
            for (int t = 0; t < seq; t++)
                for (int i = 0; i < E; i++) x[t, i] = W(p.Wte, ids[b * seq + t] * E + i) + W(p.Wpe, t * E + i);
            foreach (var blk in p.Blocks)
            {
                var a = LayerNorm(x, blk.Ln1Weight, blk.Ln1Bias, W, seq, E, c.LayerNormEpsilon);
                var qkv = Linear(a, blk.AttnWeight, blk.AttnBias, W, seq, E, 3 * E);
                var y = new double[seq, E];
                for (int h = 0; h < H; h++)
                    for (int t = 0; t < seq; t++)
                    {
                        var s = new double[t + 1];
                        for (int u = 0; u <= t; u++)
                        {
                            for (int d = 0; d < D; d++) s[u] += qkv[t, h * D + d] * qkv[u, E + h * D + d];
                            s[u] /= Math.Sqrt(D);
                        }
                        double max = s.Max(), sum = s.Sum(z => Math.Exp(z - max));
                        for (int u = 0; u <= t; u++)
                            for (int d = 0; d < D; d++) y[t, h * D + d] += Math.Exp(s[u] - max) / sum * qkv[u, 2 * E + h * D + d];
                    }
                var proj = Linear(y, blk.ProjWeight, blk.ProjBias, W, seq, E, E);
                for (int t = 0; t < seq; t++) for (int i = 0; i < E; i++) x[t, i] += proj[t, i];
                var m = LayerNorm(x, blk.Ln2Weight, blk.Ln2Bias, W, seq, E, c.LayerNormEpsilon);
                var h1 = Linear(m, blk.FcWeight, blk.FcBias, W, seq, E, M);
                for (int t = 0; t < seq; t++) for (int i = 0; i < M; i++) h1[t, i] = Gelu(h1[t, i]);
                var h2 = Linear(h1, blk.FcProjWeight, blk.FcProjBias, W, seq, M, E);
                for (int t = 0; t < seq; t++) for (int i = 0; i < E; i++) x[t, i] += h2[t, i];
            }
            var f = LayerNorm(x, p.LnFWeight, p.LnFBias, W, seq, E, c.LayerNormEpsilon);
            for (int t = 0; t < seq; t++)
            {
                int target = targets[b * seq + t];
                if (target < 0) continue;
                var logits = new double[c.VocabSize];
                for (int k = 0; k < c.VocabSize; k++)
                    for (int i = 0; i < E; i++) logits[k] += f[t, i] * W(p.Wte, k * E + i);
                double max = logits.Max();
                total += Math.Log(logits.Sum(z => Math.Exp(z - max))) + max - logits[target];
                count++;
            }
        }
        return total / count;
    }

    public static double Gelu(double x) => 0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    private static double[,] LayerNorm(double[,] x, ParameterTensor g, ParameterTensor b, Func<ParameterTensor, int, double> w, int rows, int dim, double eps)
    {
        var y = new double[rows, dim];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < dim; i++) mean += x[r, i];
            mean /= dim;
            for (int i = 0; i < dim; i++) var += (x[r, i] - mean) * (x[r, i] - mean);
            double rstd = 1 / Math.Sqrt(var / dim + eps);
            for (int i = 0; i < dim; i++) y[r, i] = (x[r, i] - mean) * rstd * w(g, i) + w(b, i);
        }
        return y;
    }

    /// <summary>y = x·Wᵀ + b with W stored [out, in] as in <see cref="Gpt2Parameters"/>.</summary>
    private static double[,] Linear(double[,] x, ParameterTensor wt, ParameterTensor bt, Func<ParameterTensor, int, double> w, int rows, int inDim, int outDim)
    {
        var y = new double[rows, outDim];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outDim; o++)
            {
                double s = w(bt, o);
                for (int i = 0; i < inDim; i++) s += x[r, i] * w(wt, o * inDim + i);
                y[r, o] = s;
            }
        return y;
    }
}
