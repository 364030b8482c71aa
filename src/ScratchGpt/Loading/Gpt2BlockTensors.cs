namespace ScratchGpt.Loading;

/// <summary>
/// The twelve tensors of one GPT-2 block, named after the checkpoint's h.{l}.* keys, in the order the forward
/// pass uses them. <typeparamref name="T"/> is what holds each one: a <see cref="TensorSpec"/> in the layout,
/// a device buffer in the model, an offset into the flat parameter array in training.
/// </summary>
public sealed record Gpt2BlockTensors<T>(
    T Ln1Weight, T Ln1Bias,                 // ln_1                [E], [E]
    T CAttnWeight, T CAttnBias,             // attn.c_attn         [3E, E], [3E]
    T AttnCProjWeight, T AttnCProjBias,     // attn.c_proj         [E, E], [E]
    T Ln2Weight, T Ln2Bias,                 // ln_2                [E], [E]
    T CFcWeight, T CFcBias,                 // mlp.c_fc            [4E, E], [4E]
    T MlpCProjWeight, T MlpCProjBias)       // mlp.c_proj          [E, 4E], [E]
{
    /// <summary>The twelve, in checkpoint order.</summary>
    public IEnumerable<T> All() =>
    [
        Ln1Weight, Ln1Bias, CAttnWeight, CAttnBias, AttnCProjWeight, AttnCProjBias,
        Ln2Weight, Ln2Bias, CFcWeight, CFcBias, MlpCProjWeight, MlpCProjBias,
    ];

    public Gpt2BlockTensors<TOut> Select<TOut>(Func<T, TOut> f) => new(
        f(Ln1Weight), f(Ln1Bias), f(CAttnWeight), f(CAttnBias), f(AttnCProjWeight), f(AttnCProjBias),
        f(Ln2Weight), f(Ln2Bias), f(CFcWeight), f(CFcBias), f(MlpCProjWeight), f(MlpCProjBias));
}
