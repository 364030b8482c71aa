using ScratchGpt.Backends;
using ScratchGpt.Loading;

namespace ScratchGpt.Model;

/// <summary>
/// One transformer block of GPT-2 (pre-LayerNorm):
///     x = x + attn.c_proj(attention(attn.c_attn(ln_1(x))))
///     x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))
/// Weight matrices are held as [out, in] (transposed from the checkpoint's Conv1D [in, out]).
/// </summary>
public sealed class Gpt2Block : IDisposable
{
    public required IDeviceBuffer Ln1Weight, Ln1Bias;        // [E]
    public required IDeviceBuffer AttnWeight, AttnBias;      // c_attn: [3E, E], [3E]
    public required IDeviceBuffer AttnProjWeight, AttnProjBias; // attn.c_proj: [E, E], [E]
    public required IDeviceBuffer Ln2Weight, Ln2Bias;        // [E]
    public required IDeviceBuffer FcWeight, FcBias;          // mlp.c_fc: [4E, E], [4E]
    public required IDeviceBuffer MlpProjWeight, MlpProjBias; // mlp.c_proj: [E, 4E], [E]

    public static Gpt2Block Load(Gpt2Checkpoint ckpt, IBackend backend, int layer, WeightPrecision precision)
    {
        var c = ckpt.Config;
        int E = c.NEmbd, M = c.MlpWidth;
        string p = $"h.{layer}.";
        IDeviceBuffer Vec(string name, int n) => backend.Upload(ckpt.Read(p + name, n));
        IDeviceBuffer Mat(string name, int inDim, int outDim) =>
            backend.UploadWeight(ckpt.ReadConv1DTransposed(p + name, inDim, outDim), precision);
        return new Gpt2Block
        {
            Ln1Weight = Vec("ln_1.weight", E), Ln1Bias = Vec("ln_1.bias", E),
            AttnWeight = Mat("attn.c_attn.weight", E, 3 * E), AttnBias = Vec("attn.c_attn.bias", 3 * E),
            AttnProjWeight = Mat("attn.c_proj.weight", E, E), AttnProjBias = Vec("attn.c_proj.bias", E),
            Ln2Weight = Vec("ln_2.weight", E), Ln2Bias = Vec("ln_2.bias", E),
            FcWeight = Mat("mlp.c_fc.weight", E, M), FcBias = Vec("mlp.c_fc.bias", M),
            MlpProjWeight = Mat("mlp.c_proj.weight", M, E), MlpProjBias = Vec("mlp.c_proj.bias", E),
        };
    }

    private const MatMulEpilogue Residual = MatMulEpilogue.AddToOutput;

    /// <summary>Runs the block on the T new rows in s.X (in place), extending this layer's KV cache. The residual
    /// adds and the GELU ride on the matmuls before them (one launch each on a GPU: 8 per block instead of 11).</summary>
    public void Forward(IBackend be, Gpt2Config c, Workspace s, IDeviceBuffer kCache, IDeviceBuffer vCache, int T, int past, IDeviceBuffer? probs)
    {
        QueryKeyValue(be, c, s, T);                                                     // qkv = c_attn(ln_1(x)) [T, 3E]
        be.Attention(s.Qkv, kCache, vCache, s.A, probs, T, past, c.NHead, c.HeadDim);  // a   = attention      [T, E]
        ProjectionAndMlp(be, c, s, T);                                                  // x  += c_proj(a); x += mlp(ln_2(x))
    }

    /// <summary>The half before attention: qkv = ln_1(x)·W + b. (A batched decode step runs the two halves over
    /// all its sequences' rows at once and attention per sequence, each over its own cache; see Gpt2Model.)</summary>
    public void QueryKeyValue(IBackend be, Gpt2Config c, Workspace s, int T)
    {
        int E = c.NEmbd;
        be.LayerNorm(s.X, Ln1Weight, Ln1Bias, s.A, T, E, c.LayerNormEpsilon);          // a   = ln_1(x)        [T, E]
        be.MatMul(s.A, AttnWeight, AttnBias, s.Qkv, T, E, 3 * E);                      // qkv = a·W + b        [T, 3E]
    }

    /// <summary>The half after attention (its output in s.A): the projection with its residual, then the MLP with its.</summary>
    public void ProjectionAndMlp(IBackend be, Gpt2Config c, Workspace s, int T)
    {
        int E = c.NEmbd, M = c.MlpWidth;
        be.MatMul(s.A, AttnProjWeight, AttnProjBias, s.X, T, E, E, Residual);          // x  += a·W + b        [T, E]
        be.LayerNorm(s.X, Ln2Weight, Ln2Bias, s.A, T, E, c.LayerNormEpsilon);          // m   = ln_2(x)        [T, E]
        be.MatMul(s.A, FcWeight, FcBias, s.Hidden, T, E, M, MatMulEpilogue.Gelu);      // h   = gelu_new(m·W + b) [T, 4E]
        be.MatMul(s.Hidden, MlpProjWeight, MlpProjBias, s.X, T, M, E, Residual);       // x  += h·W + b        [T, E]
    }

    public IEnumerable<(string Name, IDeviceBuffer Buffer)> Parameters()
    {
        yield return ("ln_1.weight", Ln1Weight); yield return ("ln_1.bias", Ln1Bias);
        yield return ("attn.c_attn.weight", AttnWeight); yield return ("attn.c_attn.bias", AttnBias);
        yield return ("attn.c_proj.weight", AttnProjWeight); yield return ("attn.c_proj.bias", AttnProjBias);
        yield return ("ln_2.weight", Ln2Weight); yield return ("ln_2.bias", Ln2Bias);
        yield return ("mlp.c_fc.weight", FcWeight); yield return ("mlp.c_fc.bias", FcBias);
        yield return ("mlp.c_proj.weight", MlpProjWeight); yield return ("mlp.c_proj.bias", MlpProjBias);
    }

    public void Dispose()
    {
        foreach (var (_, b) in Parameters()) b.Dispose();
    }
}
