using ScratchGpt.Loading;

namespace ScratchGpt.Training;

/// <summary>
/// Writes a GPT-2 with random weights in the save_pretrained layout (config.json, generation_config.json,
/// model.safetensors), initialised by <see cref="Gpt2Parameters.InitRule"/>. Speed does not depend on the
/// values, so benchmarks use these. Tensors are made one at a time, in the checkpoint's own [in, out]
/// Conv1D layout, so a gpt2-xl never needs a float32 copy of the whole model.
/// </summary>
public static class RandomCheckpoint
{
    public static void Write(Gpt2Config c, string directory, string dtype, int seed)
    {
        var rng = new Random(seed);
        var w = new SafetensorsWriter();
        void Add(string name, long[] shape)
        {
            var (fill, std) = Gpt2Parameters.InitRule(name, shape.Length, c);
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (long i = 0; i < data.Length; i++)
                data[i] = std == 0 ? fill : (float)(fill + std * Gpt2Parameters.StandardNormal(rng));
            string full = "transformer." + name;
            if (dtype == "f16") w.AddFloat16(full, shape, data);
            else if (dtype == "bf16") w.AddBFloat16(full, shape, data);
            else w.AddFloat32(full, shape, data);
        }
        int E = c.NEmbd, M = c.MlpWidth;
        Add("wte.weight", [c.VocabSize, E]);
        Add("wpe.weight", [c.NPositions, E]);
        for (int l = 0; l < c.NLayer; l++)
        {
            string p = $"h.{l}.";
            Add(p + "ln_1.weight", [E]); Add(p + "ln_1.bias", [E]);
            Add(p + "attn.c_attn.weight", [E, 3 * E]); Add(p + "attn.c_attn.bias", [3 * E]);
            Add(p + "attn.c_proj.weight", [E, E]); Add(p + "attn.c_proj.bias", [E]);
            Add(p + "ln_2.weight", [E]); Add(p + "ln_2.bias", [E]);
            Add(p + "mlp.c_fc.weight", [E, M]); Add(p + "mlp.c_fc.bias", [M]);
            Add(p + "mlp.c_proj.weight", [M, E]); Add(p + "mlp.c_proj.bias", [E]);
        }
        Add("ln_f.weight", [E]); Add("ln_f.bias", [E]);
        w.Save(Path.Combine(directory, "model.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), c.ToJson(dtype));
        AtomicFile.WriteAllText(Path.Combine(directory, "generation_config.json"), c.GenerationConfigJson());
    }
}
