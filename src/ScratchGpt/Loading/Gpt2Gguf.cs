namespace ScratchGpt.Loading;

/// <summary>
/// A GPT-2 checkpoint as the GGUF file llama.cpp loads for its "gpt2" architecture: the hyper-parameters under
/// gpt2.*, the tokenizer under tokenizer.ggml.* (model "gpt2", pre-tokenizer "gpt-2"), and the tensors under
/// llama.cpp's names. Matrices are stored [out, in] row-major (ggml dims [in, out]), as the runtime holds them
/// (Conv1D weights transposed); the tied LM head is written again as output.weight, which llama.cpp requires.
/// Vectors (biases, layer-norm gains) stay float32; the matrices are float32, float16, Q8_0 or Q4_0 (position
/// embeddings stay float32 under Q8_0 and Q4_0, as they are added, not multiplied).
/// </summary>
public static class Gpt2Gguf
{
    /// <summary>llama.cpp's tensor name for a checkpoint name of <see cref="Gpt2Layout"/>.</summary>
    public static string TensorName(string checkpointName)
    {
        if (checkpointName == "wte.weight") return "token_embd.weight";
        if (checkpointName == "wpe.weight") return "position_embd.weight";
        if (checkpointName.StartsWith("ln_f.", StringComparison.Ordinal)) return "output_norm." + checkpointName[5..];
        // h.{l}.<module>.<weight|bias>
        string[] parts = checkpointName.Split('.');
        string module = string.Join('.', parts[2..^1]);
        string block = module switch
        {
            "ln_1" => "attn_norm", "attn.c_attn" => "attn_qkv", "attn.c_proj" => "attn_output",
            "ln_2" => "ffn_norm", "mlp.c_fc" => "ffn_up", "mlp.c_proj" => "ffn_down",
            _ => throw new ArgumentException($"no GGUF name for tensor '{checkpointName}'"),
        };
        return $"blk.{parts[1]}.{block}.{parts[^1]}";
    }

    /// <summary>general.file_type: 0 all float32, 1 mostly float16, 7 mostly Q8_0, 2 mostly Q4_0.</summary>
    public static uint FileType(string dtype) =>
        dtype switch { "f32" => 0, "f16" => 1, "q8_0" => 7, "q4_0" => 2, _ => throw Bad(dtype) };

    private static ArgumentException Bad(string dtype) =>
        new($"--dtype for GGUF must be f32, f16, q8_0 or q4_0, got '{dtype}'");

    private static bool Quantized(string dtype) => dtype is "q8_0" or "q4_0";

    public static void Write(Gpt2Checkpoint ckpt, GgufVocabulary vocab, string dtype, string name, string path)
    {
        var c = ckpt.Config;
        uint fileType = FileType(dtype);   // refuses an unknown dtype before any work
        if (vocab.Tokens.Length != c.VocabSize)
            throw new ArgumentException($"the tokenizer gives {vocab.Tokens.Length} tokens, the model's vocab_size " +
                $"is {c.VocabSize}");
        if (Quantized(dtype) && (c.NEmbd % Q8_0.BlockSize != 0))
            throw new ArgumentException($"{dtype.ToUpperInvariant()} stores rows in blocks of {Q8_0.BlockSize}: " +
                $"n_embd {c.NEmbd} is not a multiple");
        var w = new GgufWriter()
            .Add("general.architecture", "gpt2")
            .Add("general.name", name)
            .Add("general.file_type", fileType)
            .Add("general.quantization_version", 2u)
            .Add("gpt2.context_length", (uint)c.NPositions)
            .Add("gpt2.embedding_length", (uint)c.NEmbd)
            .Add("gpt2.feed_forward_length", (uint)c.MlpWidth)
            .Add("gpt2.block_count", (uint)c.NLayer)
            .Add("gpt2.attention.head_count", (uint)c.NHead)
            .Add("gpt2.attention.layer_norm_epsilon", c.LayerNormEpsilon)
            .Add("tokenizer.ggml.model", "gpt2")
            .Add("tokenizer.ggml.pre", "gpt-2")
            .Add("tokenizer.ggml.tokens", vocab.Tokens)
            .Add("tokenizer.ggml.token_type", vocab.TokenTypes)
            .Add("tokenizer.ggml.merges", vocab.Merges);
        if (vocab.BosId is int bos) w.Add("tokenizer.ggml.bos_token_id", (uint)bos);
        if (vocab.EosId is int eos) w.Add("tokenizer.ggml.eos_token_id", (uint)eos);

        var matrixType = dtype switch
        {
            "f16" => GgufWriter.TensorType.F16,
            "q8_0" => GgufWriter.TensorType.Q8_0,
            "q4_0" => GgufWriter.TensorType.Q4_0,
            _ => GgufWriter.TensorType.F32,
        };
        foreach (var spec in Gpt2Layout.For(c).All())
        {
            float[] data = ckpt.Read(spec);
            long[] dims = spec.Shape.Reverse().Select(d => (long)d).ToArray();
            bool keepFloat32 = spec.Shape.Length == 1 || (spec.Name == "wpe.weight" && Quantized(dtype));
            var type = keepFloat32 ? GgufWriter.TensorType.F32 : matrixType;
            byte[] bytes = Encode(data, type);
            w.AddTensor(TensorName(spec.Name), dims, type, bytes);
            if (spec.Name == "wte.weight") w.AddTensor("output.weight", dims, type, bytes);
        }
        w.Save(path);
    }

    public static byte[] Encode(float[] data, GgufWriter.TensorType type) => type switch
    {
        GgufWriter.TensorType.F16 => DTypeConversion.FloatToHalfBytes(data),
        GgufWriter.TensorType.Q8_0 => Q8_0.Quantize(data),
        GgufWriter.TensorType.Q4_0 => Q4_0.Quantize(data),
        _ => System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray(),
    };
}
