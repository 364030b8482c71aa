using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Inspection;

/// <summary>
/// Every intermediate activation of one forward pass under TransformerLens' names and shapes (see
/// <see cref="ForwardHooks"/>), as TransformerLens' <c>run_with_cache</c> gives them for a batch of one, written
/// as a float32 safetensors file that Python's <c>safetensors.torch.load_file</c> reads.
/// </summary>
public static class ActivationCache
{
    public static Dictionary<string, Activation> Run(Gpt2Model model, int[] ids)
    {
        var cache = new Dictionary<string, Activation>();
        model.Forward(ids, new ForwardOptions { Hooks = new ForwardHooks().CacheInto(cache), AllLogits = false });
        return cache;
    }

    /// <summary>Writes the cache (in the order the pass made the activations) and input_ids to
    /// <paramref name="path"/>.</summary>
    public static void Save(IReadOnlyDictionary<string, Activation> cache, int[] ids, Gpt2Config config, string path)
    {
        var w = new SafetensorsWriter().AddInt64("input_ids", [1, ids.Length], ids.Select(i => (long)i).ToArray());
        foreach (string name in ForwardHooks.Names(config))
            if (cache.TryGetValue(name, out var a))
                w.AddFloat32(name, a.Shape.Select(d => (long)d).ToArray(), a.Values);
        w.Save(path);
    }
}
