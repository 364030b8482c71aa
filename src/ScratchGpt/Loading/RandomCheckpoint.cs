namespace ScratchGpt.Loading;

/// <summary>
/// Writes a GPT-2 with random weights in the save_pretrained layout, initialised as GPT-2 is:
/// N(0, 0.02) for matrices (the residual projections scaled by 1/√(2·n_layer)), zero biases,
/// LayerNorm weights 1. Speed does not depend on the values, so benchmarks use these.
/// </summary>
public static class RandomCheckpoint
{
    public static void Write(Gpt2Config c, string directory, string dtype, int seed)
    {
        var rng = new Random(seed);
        float Normal(double std)
        {
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            return (float)(std * Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
        var w = new SafetensorsWriter();
        void Add(string name, long[] shape, Func<float> init)
        {
            var data = new float[shape.Aggregate(1L, (a, b) => a * b)];
            for (long i = 0; i < data.Length; i++) data[i] = init();
            string full = "transformer." + name;
            if (dtype == "f16") w.AddFloat16(full, shape, data);
            else if (dtype == "bf16") w.AddBFloat16(full, shape, data);
            else w.AddFloat32(full, shape, data);
        }
        int E = c.NEmbd, M = c.MlpWidth;
        double std = 0.02, projStd = 0.02 / Math.Sqrt(2 * c.NLayer);
        Add("wte.weight", [c.VocabSize, E], () => Normal(std));
        Add("wpe.weight", [c.NPositions, E], () => Normal(0.01));
        for (int l = 0; l < c.NLayer; l++)
        {
            string p = $"h.{l}.";
            Add(p + "ln_1.weight", [E], () => 1f); Add(p + "ln_1.bias", [E], () => 0f);
            Add(p + "attn.c_attn.weight", [E, 3 * E], () => Normal(std)); Add(p + "attn.c_attn.bias", [3 * E], () => 0f);
            Add(p + "attn.c_proj.weight", [E, E], () => Normal(projStd)); Add(p + "attn.c_proj.bias", [E], () => 0f);
            Add(p + "ln_2.weight", [E], () => 1f); Add(p + "ln_2.bias", [E], () => 0f);
            Add(p + "mlp.c_fc.weight", [E, M], () => Normal(std)); Add(p + "mlp.c_fc.bias", [M], () => 0f);
            Add(p + "mlp.c_proj.weight", [M, E], () => Normal(projStd)); Add(p + "mlp.c_proj.bias", [E], () => 0f);
        }
        Add("ln_f.weight", [E], () => 1f); Add("ln_f.bias", [E], () => 0f);
        w.Save(Path.Combine(directory, "model.safetensors"));
        AtomicFile.WriteAllText(Path.Combine(directory, "config.json"), c.ToJson(dtype));
        AtomicFile.WriteAllText(Path.Combine(directory, "generation_config.json"),
            $"{{\n  \"bos_token_id\": {c.BosTokenId},\n  \"eos_token_id\": {c.EosTokenId}\n}}\n");
    }
}
