namespace ScratchGpt.Loading;

/// <summary>
/// GPT-2's tensor table, written once: every name, shape, Conv1D transpose and weight-decay rule the loader, the
/// model, the trainer, <c>summary</c> and the writers use. E = n_embd, M = 4·E (the MLP width), V = vocab_size.
/// </summary>
public static class Gpt2Layout
{
    public static Gpt2Tensors<TensorSpec> For(Gpt2Config c)
    {
        int E = c.NEmbd, M = c.MlpWidth;
        static TensorSpec Vector(string name, int n) => new(name, [n], false, false);
        static TensorSpec Conv1D(string name, int outDim, int inDim) => new(name, [outDim, inDim], true, true);
        var h = new Gpt2BlockTensors<TensorSpec>[c.NLayer];
        for (int l = 0; l < c.NLayer; l++)
        {
            string p = $"h.{l}.";
            h[l] = new(
                Vector(p + "ln_1.weight", E), Vector(p + "ln_1.bias", E),
                Conv1D(p + "attn.c_attn.weight", 3 * E, E), Vector(p + "attn.c_attn.bias", 3 * E),
                Conv1D(p + "attn.c_proj.weight", E, E), Vector(p + "attn.c_proj.bias", E),
                Vector(p + "ln_2.weight", E), Vector(p + "ln_2.bias", E),
                Conv1D(p + "mlp.c_fc.weight", M, E), Vector(p + "mlp.c_fc.bias", M),
                Conv1D(p + "mlp.c_proj.weight", E, M), Vector(p + "mlp.c_proj.bias", E));
        }
        return new(
            Wte: new("wte.weight", [c.VocabSize, E], false, true),      // also the LM head: logits = x · wteᵀ
            Wpe: new("wpe.weight", [c.NPositions, E], false, false),
            H: h,
            LnFWeight: Vector("ln_f.weight", E), LnFBias: Vector("ln_f.bias", E));
    }

    /// <summary>The number of parameters (the tied LM head counted once).</summary>
    public static long ParameterCount(Gpt2Config c) => For(c).All().Sum(t => t.Length);
}
