using ScratchGpt.Loading;

namespace ScratchGpt.Training;

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
    public ParameterTensor Wte => Layout.Wte;
    public ParameterTensor Wpe => Layout.Wpe;
    public Gpt2BlockTensors<ParameterTensor>[] Blocks => Layout.H;
    public ParameterTensor LnFWeight => Layout.LnFWeight;
    public ParameterTensor LnFBias => Layout.LnFBias;

    /// <summary><see cref="Gpt2Layout"/>'s table with each tensor's place in <see cref="Values"/>.</summary>
    public Gpt2Tensors<ParameterTensor> Layout { get; }

    public int Count => Values.Length;

    public Gpt2Parameters(Gpt2Config config)
    {
        Config = config;
        int offset = 0;
        Layout = Gpt2Layout.For(config).Select(spec =>
        {
            var t = new ParameterTensor(spec, offset);
            offset = checked(offset + t.Length);
            return t;
        });
        Tensors = Layout.All().ToList();
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
            ckpt.Read(t.Spec).CopyTo(t.Of(p.Values));
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
    /// as [in, out], no lm_head because it is tied) in float32, float16 or bfloat16; or with the matrices in
    /// Q8_0 or Q4_0 (<see cref="QuantizedCheckpoint"/>: a layout of this project's, which transformers does not
    /// read).</summary>
    public void SaveSafetensors(string path, string dtype = "f32")
    {
        var w = new SafetensorsWriter();
        foreach (var t in Tensors)
        {
            string name = "transformer." + t.Name;
            if (dtype is "q8_0" or "q4_0" && t.Spec.IsMatMulWeight)
            {
                QuantizedCheckpoint.Add(w, name, t.Shape, t.Of(Values), dtype);
                continue;
            }
            float[] data = t.Of(Values).ToArray();
            long[] shape = t.Spec.CheckpointShape.Select(d => (long)d).ToArray();
            if (t.IsConv1D) data = BlockedTranspose.Transposed(data, t.Shape[0], t.Shape[1]);
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
