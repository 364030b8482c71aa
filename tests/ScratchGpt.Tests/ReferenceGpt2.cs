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
                var qkv = Linear(a, blk.CAttnWeight, blk.CAttnBias, W, seq, E, 3 * E);
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
                            for (int d = 0; d < D; d++)
                                y[t, h * D + d] += Math.Exp(s[u] - max) / sum * qkv[u, 2 * E + h * D + d];
                    }
                var proj = Linear(y, blk.AttnCProjWeight, blk.AttnCProjBias, W, seq, E, E);
                for (int t = 0; t < seq; t++) for (int i = 0; i < E; i++) x[t, i] += proj[t, i];
                var m = LayerNorm(x, blk.Ln2Weight, blk.Ln2Bias, W, seq, E, c.LayerNormEpsilon);
                var h1 = Linear(m, blk.CFcWeight, blk.CFcBias, W, seq, E, M);
                for (int t = 0; t < seq; t++) for (int i = 0; i < M; i++) h1[t, i] = Gelu(h1[t, i]);
                var h2 = Linear(h1, blk.MlpCProjWeight, blk.MlpCProjBias, W, seq, M, E);
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

    /// <summary>
    /// One sequence through the same plain float64 GPT-2, recording every activation under TransformerLens' names,
    /// flattened in its shape ([T, E], [T, H, D] and [H, T, T] without the batch of one), and "logits" [T, V].
    /// <paramref name="zeroHead"/> zeroes one head's slice of hook_z (layer, head) before c_proj.
    /// </summary>
    public static Dictionary<string,
        double[]> Activations(Gpt2Parameters p, int[] ids, (int Layer, int Head)? zeroHead = null)
    {
        var c = p.Config;
        double[] v = p.Values.Select(x => (double)x).ToArray();
        double W(ParameterTensor t, int i) => v[t.Offset + i];
        int T = ids.Length, E = c.NEmbd, M = c.MlpWidth, H = c.NHead, D = c.HeadDim;
        var acts = new Dictionary<string, double[]>();
        double[] Flat(double[,] a)
        {
            var f = new double[a.Length];
            Buffer.BlockCopy(a, 0, f, 0, a.Length * sizeof(double));
            return f;
        }
        double[,] Normalized(double[,] x) => Normalize(x, T, E, c.LayerNormEpsilon);
        var embed = new double[T, E];
        var pos = new double[T, E];
        var x = new double[T, E];
        for (int t = 0; t < T; t++)
            for (int i = 0; i < E; i++)
            {
                embed[t, i] = W(p.Wte, ids[t] * E + i);
                pos[t, i] = W(p.Wpe, t * E + i);
                x[t, i] = embed[t, i] + pos[t, i];
            }
        acts["hook_embed"] = Flat(embed);
        acts["hook_pos_embed"] = Flat(pos);
        for (int l = 0; l < c.NLayer; l++)
        {
            var blk = p.Blocks[l];
            string at = $"blocks.{l}.";
            acts[at + "hook_resid_pre"] = Flat(x);
            acts[at + "ln1.hook_normalized"] = Flat(Normalized(x));
            var a = LayerNorm(x, blk.Ln1Weight, blk.Ln1Bias, W, T, E, c.LayerNormEpsilon);
            var qkv = Linear(a, blk.CAttnWeight, blk.CAttnBias, W, T, E, 3 * E);
            var q = new double[T * E]; var k = new double[T * E]; var vv = new double[T * E];
            for (int t = 0; t < T; t++)
                for (int i = 0; i < E; i++)
                {
                    q[t * E + i] = qkv[t, i];
                    k[t * E + i] = qkv[t, E + i];
                    vv[t * E + i] = qkv[t, 2 * E + i];
                }
            acts[at + "attn.hook_q"] = q; acts[at + "attn.hook_k"] = k; acts[at + "attn.hook_v"] = vv;
            var scores = new double[H * T * T];
            var pattern = new double[H * T * T];
            var z = new double[T, E];
            for (int h = 0; h < H; h++)
                for (int t = 0; t < T; t++)
                {
                    for (int u = 0; u < T; u++)
                    {
                        double s = 0;
                        for (int d = 0; d < D; d++) s += q[t * E + h * D + d] * k[u * E + h * D + d];
                        scores[(h * T + t) * T + u] = u <= t ? s / Math.Sqrt(D) : double.NegativeInfinity;
                    }
                    double max = Enumerable.Range(0, t + 1).Max(u => scores[(h * T + t) * T + u]);
                    double sum = Enumerable.Range(0, t + 1).Sum(u => Math.Exp(scores[(h * T + t) * T + u] - max));
                    for (int u = 0; u <= t; u++)
                    {
                        double w = Math.Exp(scores[(h * T + t) * T + u] - max) / sum;
                        pattern[(h * T + t) * T + u] = w;
                        for (int d = 0; d < D; d++) z[t, h * D + d] += w * vv[u * E + h * D + d];
                    }
                }
            if (zeroHead is (int zl, int zh) && zl == l)
                for (int t = 0; t < T; t++) for (int d = 0; d < D; d++) z[t, zh * D + d] = 0;
            acts[at + "attn.hook_attn_scores"] = scores;
            acts[at + "attn.hook_pattern"] = pattern;
            acts[at + "attn.hook_z"] = Flat(z);
            var attnOut = Linear(z, blk.AttnCProjWeight, blk.AttnCProjBias, W, T, E, E);
            acts[at + "hook_attn_out"] = Flat(attnOut);
            for (int t = 0; t < T; t++) for (int i = 0; i < E; i++) x[t, i] += attnOut[t, i];
            acts[at + "hook_resid_mid"] = Flat(x);
            acts[at + "ln2.hook_normalized"] = Flat(Normalized(x));
            var m = LayerNorm(x, blk.Ln2Weight, blk.Ln2Bias, W, T, E, c.LayerNormEpsilon);
            var pre = Linear(m, blk.CFcWeight, blk.CFcBias, W, T, E, M);
            acts[at + "mlp.hook_pre"] = Flat(pre);
            for (int t = 0; t < T; t++) for (int i = 0; i < M; i++) pre[t, i] = Gelu(pre[t, i]);
            acts[at + "mlp.hook_post"] = Flat(pre);
            var mlpOut = Linear(pre, blk.MlpCProjWeight, blk.MlpCProjBias, W, T, M, E);
            acts[at + "hook_mlp_out"] = Flat(mlpOut);
            for (int t = 0; t < T; t++) for (int i = 0; i < E; i++) x[t, i] += mlpOut[t, i];
            acts[at + "hook_resid_post"] = Flat(x);
        }
        acts["ln_final.hook_normalized"] = Flat(Normalized(x));
        var f = LayerNorm(x, p.LnFWeight, p.LnFBias, W, T, E, c.LayerNormEpsilon);
        var logits = new double[T * c.VocabSize];
        for (int t = 0; t < T; t++)
            for (int o = 0; o < c.VocabSize; o++)
            {
                double s = 0;
                for (int i = 0; i < E; i++) s += f[t, i] * W(p.Wte, o * E + i);
                logits[t * c.VocabSize + o] = s;
            }
        acts["logits"] = logits;
        return acts;
    }

    public static double Gelu(double x) =>
        0.5 * x * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));

    /// <summary>(x − mean) · 1/√(var + eps) per row: the layer norm before its gain and bias.</summary>
    private static double[,] Normalize(double[,] x, int rows, int dim, double eps)
    {
        var y = new double[rows, dim];
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < dim; i++) mean += x[r, i];
            mean /= dim;
            for (int i = 0; i < dim; i++) var += (x[r, i] - mean) * (x[r, i] - mean);
            double rstd = 1 / Math.Sqrt(var / dim + eps);
            for (int i = 0; i < dim; i++) y[r, i] = (x[r, i] - mean) * rstd;
        }
        return y;
    }

    private static double[,] LayerNorm(double[,] x, ParameterTensor g, ParameterTensor b, Func<ParameterTensor, int,
        double> w, int rows, int dim, double eps)
    {
        var y = Normalize(x, rows, dim, eps);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < dim; i++) y[r, i] = y[r, i] * w(g, i) + w(b, i);
        return y;
    }

    /// <summary>y = x·Wᵀ + b with W stored [out, in] as in <see cref="Gpt2Parameters"/>.</summary>
    private static double[,] Linear(double[,] x, ParameterTensor wt, ParameterTensor bt, Func<ParameterTensor, int,
        double> w, int rows, int inDim, int outDim)
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
