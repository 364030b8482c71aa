namespace ScratchGpt.Loading;

/// <summary>
/// All of GPT-2's tensors: wte, wpe, the blocks h.0 … h.{n_layer−1}, ln_f. The LM head has none of its own: it is
/// tied to wte. <see cref="Gpt2Layout.For"/> gives the table of names and shapes; the model, the trainer and the
/// writers hold their own copies of this record with their own <typeparamref name="T"/>.
/// </summary>
public sealed record Gpt2Tensors<T>(T Wte, T Wpe, Gpt2BlockTensors<T>[] H, T LnFWeight, T LnFBias)
{
    /// <summary>Every tensor in checkpoint order.</summary>
    public IEnumerable<T> All()
    {
        yield return Wte;
        yield return Wpe;
        foreach (var block in H)
            foreach (var t in block.All()) yield return t;
        yield return LnFWeight;
        yield return LnFBias;
    }

    /// <summary>The same table with each tensor mapped, in checkpoint order (so <paramref name="f"/> may allocate
    /// sequentially).</summary>
    public Gpt2Tensors<TOut> Select<TOut>(Func<T, TOut> f)
    {
        var wte = f(Wte);
        var wpe = f(Wpe);
        var h = new Gpt2BlockTensors<TOut>[H.Length];
        for (int l = 0; l < H.Length; l++) h[l] = H[l].Select(f);
        var lnFWeight = f(LnFWeight);
        return new(wte, wpe, h, lnFWeight, f(LnFBias));
    }
}
