using ScratchGpt.Backends;
using ScratchGpt.Loading;

namespace ScratchGpt.Model;

/// <summary>
/// One transformer block of GPT-2 (pre-LayerNorm):
///     x = x + attn.c_proj(attention(attn.c_attn(ln_1(x))))
///     x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
/// Weight matrices are held as [out, in] (transposed from the checkpoint's Conv1D [in, out]).
/// </summary>
public sealed class Gpt2Block(Gpt2BlockTensors<IDeviceBuffer> w)
{
    /// <summary>This block's weights on the backend, named as in the checkpoint (see <see cref="Gpt2Layout"/>);
    /// the model owns (and disposes) them.</summary>
    public Gpt2BlockTensors<IDeviceBuffer> W { get; } = w;

    private const MatMulEpilogue Residual = MatMulEpilogue.AddToOutput;

    /// <summary>The half before attention: qkv = ln_1(x)·W + b. Attention sits between the halves and runs per
    /// sequence, each over its own cache (see Gpt2Model.RunLayers); the halves run over all rows at once.</summary>
    public void QueryKeyValue(IBackend be, Gpt2Config c, Workspace s, int T)
    {
        int E = c.NEmbd;
        be.LayerNorm(s.X, W.Ln1Weight, W.Ln1Bias, s.A, T, E, c.LayerNormEpsilon);   // a   = ln_1(x)        [T, E]
        be.MatMul(s.A, W.CAttnWeight, W.CAttnBias, s.Qkv, T, E, 3 * E);   // qkv = a·W + b        [T, 3E]
    }

    /// <summary>The half after attention (its output in s.A): the projection with its residual, then the MLP with
    /// its. The residual adds and the GELU ride on the matmuls before them (one launch each on a GPU).</summary>
    public void ProjectionAndMlp(IBackend be, Gpt2Config c, Workspace s, int T)
    {
        int E = c.NEmbd, M = c.MlpWidth;
        be.MatMul(s.A, W.AttnCProjWeight, W.AttnCProjBias, s.X, T, E, E, Residual);   // x  += a·W + b        [T, E]
        be.LayerNorm(s.X, W.Ln2Weight, W.Ln2Bias, s.A, T, E, c.LayerNormEpsilon);   // m   = ln_2(x)        [T, E]
        // h   = gelu_new(m·W + b) [T, 4E]
        be.MatMul(s.A, W.CFcWeight, W.CFcBias, s.Hidden, T, E, M, MatMulEpilogue.Gelu);
        be.MatMul(s.Hidden, W.MlpCProjWeight, W.MlpCProjBias, s.X, T, M, E, Residual);   // x  += h·W + b        [T, E]
    }


    /// <summary><see cref="ProjectionAndMlp"/> unfused, for a hooked pass: each intermediate goes through the hooks
    /// (which may replace it) before the next step reads it.</summary>
    internal void ProjectionAndMlpHooked(IBackend be, Gpt2Config c, Workspace s, int T, HookSite hooks, string at)
    {
        int E = c.NEmbd, M = c.MlpWidth;
        be.MatMul(s.A, W.AttnCProjWeight, W.AttnCProjBias, s.Proj, T, E, E);   // attn_out = z·W + b     [T, E]
        hooks.Device(at + "hook_attn_out", s.Proj, [1, T, E]);
        be.Add(s.X, s.Proj, (long)T * E);                                               // x += attn_out
        var mid = hooks.Device(at + "hook_resid_mid", s.X, [1, T, E], need: hooks.Wants(at + "ln2.hook_normalized"));
        hooks.Host(at + "ln2.hook_normalized", [1, T, E], () => hooks.Normalized(mid!, c.LayerNormEpsilon));
        be.LayerNorm(s.X, W.Ln2Weight, W.Ln2Bias, s.A, T, E, c.LayerNormEpsilon);      // m = ln_2(x)            [T, E]
        be.MatMul(s.A, W.CFcWeight, W.CFcBias, s.Hidden, T, E, M);   // pre = m·W + b          [T, 4E]
        hooks.Device(at + "mlp.hook_pre", s.Hidden, [1, T, M]);
        be.Gelu(s.Hidden, (long)T * M);                                                 // post = gelu_new(pre)
        hooks.Device(at + "mlp.hook_post", s.Hidden, [1, T, M]);
        be.MatMul(s.Hidden, W.MlpCProjWeight, W.MlpCProjBias, s.Proj, T, M, E);         // mlp_out = post·W + b   [T, E]
        hooks.Device(at + "hook_mlp_out", s.Proj, [1, T, E]);
        be.Add(s.X, s.Proj, (long)T * E);                                               // x += mlp_out
        hooks.Device(at + "hook_resid_post", s.X, [1, T, E]);
    }
}
