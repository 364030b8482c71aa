using ScratchGpt.Backends.Cpu;
using ScratchGpt.Loading;

namespace ScratchGpt.Training;

/// <summary>One named tensor inside <see cref="Gpt2Parameters.Values"/>.</summary>
/// <param name="Name">The checkpoint name without the "transformer." prefix, e.g. "h.0.attn.c_attn.weight".</param>
/// <param name="Shape">The shape as stored here. Linear weights are [out, in]; the checkpoint's Conv1D stores [in, out].</param>
/// <param name="IsConv1D">True for the four Conv1D weights per block, which are transposed on load and save.</param>
public sealed record ParameterTensor(string Name, int Offset, int[] Shape, bool IsConv1D)
{
    public int Length => Shape.Aggregate(1, (a, b) => a * b);

    /// <summary>Weight decay applies to matrices (embeddings and linear weights), never to biases or LayerNorm gains, as in GPT-2 and nanoGPT.</summary>
    public bool Decays => Shape.Length >= 2;

    public Span<float> Of(float[] values) => values.AsSpan(Offset, Length);
    public Memory<float> MemoryOf(float[] values) => values.AsMemory(Offset, Length);
}

/// <summary>The tensors of one transformer block, in the order the forward pass uses them.</summary>
public sealed record BlockTensors(
    ParameterTensor Ln1Weight, ParameterTensor Ln1Bias,
    ParameterTensor AttnWeight, ParameterTensor AttnBias,     // c_attn: [3E, E], [3E]
    ParameterTensor ProjWeight, ParameterTensor ProjBias,     // attn.c_proj: [E, E], [E]
    ParameterTensor Ln2Weight, ParameterTensor Ln2Bias,
    ParameterTensor FcWeight, ParameterTensor FcBias,         // mlp.c_fc: [M, E], [M]
    ParameterTensor FcProjWeight, ParameterTensor FcProjBias); // mlp.c_proj: [E, M], [E]

/// <summary>
/// All of GPT-2's trainable parameters in one flat float array, so that the optimiser, gradient
/// clipping and zeroing are single loops, and gradients/Adam moments are arrays of the same length
/// with the same offsets. The LM head has no tensor of its own: it is tied to wte.
/// </summary>
public sealed class Gpt2Parameters
{
    public Gpt2Config Config { get; }
    public float[] Values { get; }
    public IReadOnlyList<ParameterTensor> Tensors { get; }
    public ParameterTensor Wte { get; }
    public ParameterTensor Wpe { get; }
    public BlockTensors[] Blocks { get; }
    public ParameterTensor LnFWeight { get; }
    public ParameterTensor LnFBias { get; }

    public int Count => Values.Length;

    public Gpt2Parameters(Gpt2Config config)
    {
        Config = config;
        int E = config.NEmbd, M = config.MlpWidth, offset = 0;
        var list = new List<ParameterTensor>();
        ParameterTensor T(string name, bool conv1d, params int[] shape)
        {
            var t = new ParameterTensor(name, offset, shape, conv1d);
            offset = checked(offset + t.Length);
            list.Add(t);
            return t;
        }
        Wte = T("wte.weight", false, config.VocabSize, E);
        Wpe = T("wpe.weight", false, config.NPositions, E);
        Blocks = new BlockTensors[config.NLayer];
        for (int l = 0; l < config.NLayer; l++)
        {
            string p = $"h.{l}.";
            Blocks[l] = new BlockTensors(
                T(p + "ln_1.weight", false, E), T(p + "ln_1.bias", false, E),
                T(p + "attn.c_attn.weight", true, 3 * E, E), T(p + "attn.c_attn.bias", false, 3 * E),
                T(p + "attn.c_proj.weight", true, E, E), T(p + "attn.c_proj.bias", false, E),
                T(p + "ln_2.weight", false, E), T(p + "ln_2.bias", false, E),
                T(p + "mlp.c_fc.weight", true, M, E), T(p + "mlp.c_fc.bias", false, M),
                T(p + "mlp.c_proj.weight", true, E, M), T(p + "mlp.c_proj.bias", false, E));
        }
        LnFWeight = T("ln_f.weight", false, E);
        LnFBias = T("ln_f.bias", false, E);
        Tensors = list;
        Values = new float[offset];
    }

    /// <summary>GPT-2's initialisation rule for one tensor (by its checkpoint name): LayerNorm gains 1, biases 0,
    /// matrices N(0, std) with std 0.02, 0.01 for wpe, and 0.02/√(2·n_layer) for the two residual projections
    /// (c_proj) of each block. Returns (fill, std): every value is fill + std · N(0, 1).</summary>
    public static (float Fill, double Std) InitRule(string name, int rank, Gpt2Config config)
    {
        if (name.EndsWith("ln_1.weight") || name.EndsWith("ln_2.weight") || name == "ln_f.weight") return (1f, 0);
        if (rank < 2) return (0f, 0);
        if (name.EndsWith("c_proj.weight")) return (0f, 0.02 / Math.Sqrt(2 * config.NLayer));
        return (0f, name == "wpe.weight" ? 0.01 : 0.02);
    }

    /// <summary>A model initialised by <see cref="InitRule"/>, reproducibly from <paramref name="seed"/>.</summary>
    public static Gpt2Parameters Initialize(Gpt2Config config, int seed)
    {
        var p = new Gpt2Parameters(config);
        var rng = new Random(seed);
        foreach (var t in p.Tensors)
        {
            var (fill, std) = InitRule(t.Name, t.Shape.Length, config);
            var v = t.Of(p.Values);
            for (int i = 0; i < v.Length; i++) v[i] = std == 0 ? fill : (float)(fill + std * StandardNormal(rng));
        }
        return p;
    }

    /// <summary>A standard normal draw by the Box–Muller transform.</summary>
    public static double StandardNormal(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>Reads every tensor from a GPT-2 safetensors checkpoint (any dtype; widened to float32).</summary>
    public static Gpt2Parameters FromCheckpoint(Gpt2Checkpoint ckpt)
    {
        var p = new Gpt2Parameters(ckpt.Config);
        foreach (var t in p.Tensors)
        {
            float[] data = t.IsConv1D
                ? ckpt.ReadConv1DTransposed(t.Name, t.Shape[1], t.Shape[0])
                : ckpt.Read(t.Name, t.Shape.Select(d => (long)d).ToArray());
            data.CopyTo(t.Of(p.Values));
        }
        return p;
    }

    /// <summary>Loads a model folder's config.json and model.safetensors.</summary>
    public static Gpt2Parameters Load(string directory)
    {
        var config = ModelFolder.LoadConfig(directory);
        using var file = ModelFolder.OpenWeights(directory);
        return FromCheckpoint(new Gpt2Checkpoint(file, config));
    }

    /// <summary>Writes model.safetensors in the save_pretrained layout ("transformer." names, Conv1D weights
    /// as [in, out], no lm_head because it is tied) in float32, float16 or bfloat16.</summary>
    public void SaveSafetensors(string path, string dtype = "f32")
    {
        var w = new SafetensorsWriter();
        foreach (var t in Tensors)
        {
            float[] data = t.Of(Values).ToArray();
            long[] shape = t.Shape.Select(d => (long)d).ToArray();
            if (t.IsConv1D)
            {
                data = Gemm.Transposed(data, t.Shape[0], t.Shape[1]);
                shape = [t.Shape[1], t.Shape[0]];
            }
            string name = "transformer." + t.Name;
            switch (dtype)
            {
                case "f16": w.AddFloat16(name, shape, data); break;
                case "bf16": w.AddBFloat16(name, shape, data); break;
                default: w.AddFloat32(name, shape, data); break;
            }
        }
        w.Save(path);
    }

    /// <summary>The same values under another config of the same shapes (e.g. other dropout rates).</summary>
    public Gpt2Parameters WithConfig(Gpt2Config config)
    {
        var c = new Gpt2Parameters(config);
        if (c.Count != Count) throw new ArgumentException("WithConfig needs a config with the same tensor shapes");
        Values.CopyTo(c.Values, 0);
        return c;
    }

    public Gpt2Parameters Clone()
    {
        var c = new Gpt2Parameters(Config);
        Values.CopyTo(c.Values, 0);
        return c;
    }
}
