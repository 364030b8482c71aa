using ScratchGpt.Decoding;
using ScratchGpt.Model;

namespace ScratchGpt.Inspection;

/// <summary>
/// Which heads a prediction needs: for every layer × head, the change in log p(target | prompt) at the last
/// position when that head's output is removed — its head_dim slice of the attention output before c_proj
/// (blocks.{l}.attn.hook_z), zeroed, or with <c>mean</c> replaced by the head's mean output over the prompt's
/// positions. A large negative delta marks a head the prediction depends on.
/// </summary>
public static class HeadAblation
{
    /// <param name="DeltaLogProb">[layer][head] log p(target) ablated − baseline.</param>
    public sealed record Result(double BaselineLogProb, double[][] DeltaLogProb);

    /// <param name="ct">Checked between passes: a cancelled run ends with <see cref="OperationCanceledException"/>
    /// (a partial table would read as a finished one).</param>
    public static Result Run(Gpt2Model model, int[] ids, int target, bool mean = false, CancellationToken ct = default)
    {
        var c = model.Config;
        if ((uint)target >= (uint)model.VocabSize)
            throw new ArgumentException($"target id {target} is outside the vocabulary");
        double baseline = LastLogProb(model, ids, target, null);
        var delta = new double[c.NLayer][];
        for (int l = 0; l < c.NLayer; l++)
        {
            delta[l] = new double[c.NHead];
            for (int h = 0; h < c.NHead; h++)
            {
                ct.ThrowIfCancellationRequested();
                int head = h;
                var hooks = new ForwardHooks()
                    .On($"blocks.{l}.attn.hook_z", z => Ablate(z.Values, ids.Length, head, c.HeadDim, c.NEmbd, mean));
                delta[l][h] = LastLogProb(model, ids, target, hooks) - baseline;
            }
        }
        return new Result(baseline, delta);
    }

    /// <summary>z is [T, H, D]: head h's slice of every position becomes 0, or its mean over positions.</summary>
    public static void Ablate(float[] z, int T, int h, int D, int E, bool mean)
    {
        for (int d = 0; d < D; d++)
        {
            float fill = 0;
            if (mean)
            {
                double sum = 0;
                for (int t = 0; t < T; t++) sum += z[t * E + h * D + d];
                fill = (float)(sum / T);
            }
            for (int t = 0; t < T; t++) z[t * E + h * D + d] = fill;
        }
    }

    private static double LastLogProb(Gpt2Model model, int[] ids, int target, ForwardHooks? hooks)
    {
        var r = model.Forward(ids, new ForwardOptions { Hooks = hooks ?? new ForwardHooks(), AllLogits = false });
        var logp = new float[model.VocabSize];
        TokenMath.LogSoftmax(r.Row(0), logp);
        return logp[target];
    }
}
