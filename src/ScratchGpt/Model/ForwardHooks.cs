using ScratchGpt.Loading;

namespace ScratchGpt.Model;

/// <summary>
/// Hooks on a forward pass, under TransformerLens' names (batch of one, T positions, H heads of D, E = H·D, M = 4E):
///
///     hook_embed, hook_pos_embed                               [1, T, E]    wte[ids], wpe[positions]
///     blocks.{l}.hook_resid_pre                                [1, T, E]    the residual stream entering block l
/// blocks.{l}.ln1.hook_normalized                           [1, T, E]    (x − mean) / √(var + ε), before ln_1's γ, β
///     blocks.{l}.attn.hook_q / hook_k / hook_v                 [1, T, H, D]
///     blocks.{l}.attn.hook_attn_scores                         [1, H, T, T] q·kᵀ/√D, −∞ above the diagonal
///     blocks.{l}.attn.hook_pattern                             [1, H, T, T] softmax of the scores
/// blocks.{l}.attn.hook_z                                   [1, T, H, D] pattern · v, each head's output before c_proj
///     blocks.{l}.hook_attn_out                                 [1, T, E]    attn.c_proj(z)
///     blocks.{l}.hook_resid_mid                                [1, T, E]    resid_pre + attn_out
///     blocks.{l}.ln2.hook_normalized                           [1, T, E]
///     blocks.{l}.mlp.hook_pre / hook_post                      [1, T, M]    c_fc(ln_2(x)), gelu_new of it
///     blocks.{l}.hook_mlp_out                                  [1, T, E]    mlp.c_proj(post)
///     blocks.{l}.hook_resid_post                               [1, T, E]    resid_mid + mlp_out
///     ln_final.hook_normalized                                 [1, T, E]
///
/// A hook reads an activation, or replaces it by writing into its values: the pass continues from the written
/// values at resid_pre, q, k, v, z, attn_out, resid_mid, mlp pre and post, mlp_out and resid_post. The others
/// (the embeddings, the normalized values, scores and pattern) are copies made for reading. A hooked pass runs
/// the block unfused, copies each hooked tensor to the host, and needs a fresh sequence (no cached positions).
/// </summary>
public sealed class ForwardHooks
{
    private readonly List<(string? Name, Action<Activation> Hook)> _hooks = [];

    /// <summary>Calls <paramref name="hook"/> with the activation named <paramref name="name"/>.</summary>
    public ForwardHooks On(string name, Action<Activation> hook)
    {
        _hooks.Add((name, hook));
        return this;
    }

    /// <summary>Calls <paramref name="hook"/> with every activation, in the order the pass makes them.</summary>
    public ForwardHooks OnEvery(Action<Activation> hook)
    {
        _hooks.Add((null, hook));
        return this;
    }

    /// <summary>Every activation into <paramref name="cache"/>, by name (copies: the cache never changes the
    /// pass).</summary>
    public ForwardHooks CacheInto(IDictionary<string, Activation> cache) =>
        OnEvery(a => cache[a.Name] = a with { Values = (float[])a.Values.Clone() });

    public bool Wants(string name)
    {
        foreach (var (n, _) in _hooks) if (n is null || n == name) return true;
        return false;
    }

    public void Fire(Activation a)
    {
        foreach (var (n, hook) in _hooks) if (n is null || n == a.Name) hook(a);
    }

    /// <summary>Every hook name of a model with this config, in the order a pass makes them.</summary>
    public static IEnumerable<string> Names(Gpt2Config c)
    {
        yield return "hook_embed";
        yield return "hook_pos_embed";
        for (int l = 0; l < c.NLayer; l++)
            foreach (string n in BlockNames) yield return $"blocks.{l}.{n}";
        yield return "ln_final.hook_normalized";
    }

    private static readonly string[] BlockNames =
    [
        "hook_resid_pre", "ln1.hook_normalized", "attn.hook_q", "attn.hook_k", "attn.hook_v", "attn.hook_attn_scores",
        "attn.hook_pattern", "attn.hook_z", "hook_attn_out", "hook_resid_mid", "ln2.hook_normalized", "mlp.hook_pre",
        "mlp.hook_post", "hook_mlp_out", "hook_resid_post",
    ];
}
