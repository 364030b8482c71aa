using ScratchGpt.Decoding;
using ScratchGpt.Model;

namespace ScratchGpt.Inspection;

/// <summary>
/// The logit lens: read the residual stream after the embeddings and after each block as if the model stopped
/// there — ln_f applied afresh, then ·wteᵀ and a softmax — to see at which layer a prediction forms. Row 0 is the
/// embeddings (blocks.0.hook_resid_pre), row l + 1 block l's output (blocks.{l}.hook_resid_post); the last row is
/// the model's own prediction.
/// </summary>
public static class LogitLens
{
    /// <param name="TopIds">[layer][position][k] the k likeliest tokens, best first.</param>
    /// <param name="TopProbs">[layer][position][k] their probabilities.</param>
    /// <param name="FinalTokenProbs">[layer][position] the probability this layer gives the model's final top
    /// token.</param>
    public sealed record Result(int[] Ids, int[][][] TopIds, float[][][] TopProbs, float[][] FinalTokenProbs);

    public static Result Run(Gpt2Model model, int[] ids, int top = 1)
    {
        var c = model.Config;
        int T = ids.Length, V = model.VocabSize;
        var residuals = new float[c.NLayer + 1][];
        var hooks = new ForwardHooks().On("blocks.0.hook_resid_pre", a => residuals[0] = (float[])a.Values.Clone());
        for (int l = 0; l < c.NLayer; l++)
        {
            int row = l + 1;
            hooks.On($"blocks.{l}.hook_resid_post", a => residuals[row] = (float[])a.Values.Clone());
        }
        model.Forward(ids, new ForwardOptions { Hooks = hooks, AllLogits = false });

        // The last row first: its top tokens are what every row's FinalTokenProbs look up. One row's
        // probabilities at a time ([V]), never all layers × positions × V.
        var topIds = new int[c.NLayer + 1][][];
        var topProbs = new float[c.NLayer + 1][][];
        var final = new float[c.NLayer + 1][];
        var probs = new float[V];
        for (int l = c.NLayer; l >= 0; l--)
        {
            float[] logits = model.Unembed(residuals[l], T);
            topIds[l] = new int[T][];
            topProbs[l] = new float[T][];
            final[l] = new float[T];
            for (int t = 0; t < T; t++)
            {
                TokenMath.Softmax(logits.AsSpan(t * V, V), probs);
                var best = TokenMath.TopK(probs, top);
                topIds[l][t] = best.Select(b => b.Index).ToArray();
                topProbs[l][t] = best.Select(b => b.Value).ToArray();
                final[l][t] = probs[topIds[c.NLayer][t][0]];
            }
        }
        return new Result(ids, topIds, topProbs, final);
    }
}
