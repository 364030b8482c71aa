using System.Text.Json;
using System.Text.Json.Nodes;

namespace ScratchGpt.Loading;

/// <summary>
/// The GPT2Config fields the runtime needs, read from a Hugging Face config.json.
/// n_inner = null means the MLP is 4 × n_embd wide. Hub-era files may carry the legacy key n_ctx.
/// </summary>
public sealed record Gpt2Config
{
    public int VocabSize { get; init; } = 50257;
    public int NPositions { get; init; } = 1024;
    public int NEmbd { get; init; } = 768;
    public int NLayer { get; init; } = 12;
    public int NHead { get; init; } = 12;
    public int? NInner { get; init; }
    public float LayerNormEpsilon { get; init; } = 1e-5f;
    public string ActivationFunction { get; init; } = "gelu_new";
    public int BosTokenId { get; init; } = 50256;
    public int EosTokenId { get; init; } = 50256;
    public bool TieWordEmbeddings { get; init; } = true;

    /// <summary>transformers' attention-scaling switches. GPT-2 checkpoints divide the scores by √head_dim and by
    /// nothing else; the kernels do exactly that, so other settings (some research checkpoints set
    /// scale_attn_by_inverse_layer_idx) are refused at load rather than run with the wrong scale.</summary>
    public bool ScaleAttnWeights { get; init; } = true;
    public bool ScaleAttnByInverseLayerIdx { get; init; }

    /// <summary>Dropout probabilities, used only when training (transformers' defaults: 0.1 each).</summary>
    public float ResidPdrop { get; init; } = 0.1f;
    public float EmbdPdrop { get; init; } = 0.1f;
    public float AttnPdrop { get; init; } = 0.1f;

    public int HeadDim => NEmbd / NHead;
    public int MlpWidth => NInner ?? 4 * NEmbd;

    /// <summary>The first length of a matrix row (n_embd, then the MLP's width n_inner) that is not whole blocks of
    /// <paramref name="block"/> values, or null when both are: Q8_0 and Q4_0 quantize rows in blocks of 32.</summary>
    public (string Key, int Width)? RowNotInBlocksOf(int block) =>
        NEmbd % block != 0 ? ("n_embd", NEmbd) : MlpWidth % block != 0 ? ("n_inner", MlpWidth) : null;

    /// <summary>The published GPT-2 shapes, for `scratchgpt init` and benchmarks.</summary>
    public static Gpt2Config Preset(string name) => name switch
    {
        "gpt2" => new Gpt2Config { NEmbd = 768, NLayer = 12, NHead = 12 },
        "gpt2-medium" => new Gpt2Config { NEmbd = 1024, NLayer = 24, NHead = 16 },
        "gpt2-large" => new Gpt2Config { NEmbd = 1280, NLayer = 36, NHead = 20 },
        "gpt2-xl" => new Gpt2Config { NEmbd = 1600, NLayer = 48, NHead = 25 },
        "distilgpt2" => new Gpt2Config { NEmbd = 768, NLayer = 6, NHead = 12 },
        _ => throw new ArgumentException($"--config: unknown model size '{name}' (expected gpt2, gpt2-medium, " +
        "gpt2-large, gpt2-xl or distilgpt2)"),
    };

    public static readonly string[] PresetNames = ["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2"];

    public static Gpt2Config Load(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found");
        return FromJson(JsonObjectFile.Read(path), path);
    }

    public static Gpt2Config FromJson(JsonObject o, string path)
    {
        string? modelType = o["model_type"] is JsonValue mt && mt.TryGetValue(out string? s) ? s : null;
        if (modelType is not null && modelType != "gpt2")
            throw new ModelLoadException($"{path}: model_type is '{modelType}', but ScratchGpt runs only GPT-2 " +
                "(model_type \"gpt2\")");
        if (modelType is null && !o.ContainsKey("n_embd"))
            throw new ModelLoadException($"{path}: not a GPT-2 config (no model_type \"gpt2\" and no n_embd)");

        int Int(string key, int fallback, bool required = false)
        {
            var node = o[key];
            if (node is null)
                return required ? throw new ModelLoadException($"{path}: missing required field '{key}'") : fallback;
            if (node is JsonValue v && v.TryGetValue(out int i)) return i;
            if (node is JsonValue d && d.TryGetValue(out double x) && x == Math.Floor(x)
                && x is >= int.MinValue and <= int.MaxValue) return (int)x;
            throw new ModelLoadException($"{path}: field '{key}' must be an integer, got {node.ToJsonString()}");
        }

        float Probability(string key)
        {
            var node = o[key];
            if (node is null) return 0.1f;
            if (node is JsonValue v && v.TryGetValue(out double x) && x >= 0 && x < 1) return (float)x;
            throw new ModelLoadException($"{path}: field '{key}' must be a probability in [0, 1), got " +
                $"{node.ToJsonString()}");
        }

        var c = new Gpt2Config
        {
            VocabSize = Int("vocab_size", 50257),
            NPositions = o.ContainsKey("n_positions") ? Int("n_positions", 1024) : Int("n_ctx", 1024),
            NEmbd = Int("n_embd", 768, required: true),
            NLayer = Int("n_layer", 12, required: true),
            NHead = Int("n_head", 12, required: true),
            NInner = o["n_inner"] is null ? null : Int("n_inner", 0),
            LayerNormEpsilon = o["layer_norm_epsilon"] is JsonValue eps && eps.TryGetValue(out double e) ? (float)e
            : 1e-5f,
            ActivationFunction = o["activation_function"] is JsonValue af && af.TryGetValue(out string? a) ? a
            : "gelu_new", BosTokenId = o["bos_token_id"] is null ? 50256 : Int("bos_token_id", 50256),
            EosTokenId = o["eos_token_id"] is null ? 50256 : Int("eos_token_id", 50256),
            TieWordEmbeddings = o["tie_word_embeddings"] is not JsonValue tw || !tw.TryGetValue(out bool tie) || tie,
            ScaleAttnWeights = o["scale_attn_weights"] is not JsonValue sw || !sw.TryGetValue(out bool scale) || scale,
            ScaleAttnByInverseLayerIdx = o["scale_attn_by_inverse_layer_idx"] is JsonValue si
            && si.TryGetValue(out bool inverse) && inverse, ResidPdrop = Probability("resid_pdrop"),
            EmbdPdrop = Probability("embd_pdrop"),
            AttnPdrop = Probability("attn_pdrop"),
        };
        c.Validate(path);
        return c;
    }

    public void Validate(string path)
    {
        void Positive(string name, int value)
        {
            if (value <= 0) throw new ModelLoadException($"{path}: {name} must be positive, got {value}");
        }
        Positive("vocab_size", VocabSize); Positive("n_positions", NPositions); Positive("n_embd", NEmbd);
        Positive("n_layer", NLayer); Positive("n_head", NHead);
        if (NInner is int ni) Positive("n_inner", ni);
        if (NEmbd % NHead != 0)
            throw new ModelLoadException($"{path}: n_embd ({NEmbd}) must be divisible by n_head ({NHead})");
        if (ActivationFunction is not ("gelu_new" or "gelu_pytorch_tanh" or "gelu_fast"))
            throw new ModelLoadException($"{path}: activation_function '{ActivationFunction}' is not supported " +
                "(GPT-2 uses gelu_new)");
        if (!(LayerNormEpsilon > 0)) throw new ModelLoadException($"{path}: layer_norm_epsilon must be positive");
        foreach (var (name, value) in new[] { ("resid_pdrop", ResidPdrop), ("embd_pdrop", EmbdPdrop),
            ("attn_pdrop", AttnPdrop) })
            if (!(value >= 0 && value < 1))
                throw new ModelLoadException($"{path}: {name} must be in [0, 1), got {value}");
        if (!TieWordEmbeddings)
            throw new ModelLoadException($"{path}: tie_word_embeddings=false is not supported (GPT-2 ties " +
                "lm_head to wte)");
        if (!ScaleAttnWeights)
            throw new ModelLoadException($"{path}: scale_attn_weights=false is not supported (GPT-2 divides " +
                "attention scores by √head_dim)");
        if (ScaleAttnByInverseLayerIdx)
            throw new ModelLoadException($"{path}: scale_attn_by_inverse_layer_idx=true is not supported (GPT-2 does " +
                "not scale attention by layer)");
    }

    /// <summary>config.json as save_pretrained writes it for GPT2LMHeadModel.</summary>
    /// <param name="dtype">f32, f16 or bf16: the dtype of the weights beside it, written as torch_dtype; q8_0 or
    /// q4_0: float32 vectors and quantized matrices, written as "quantization_config".</param>
    public string ToJson(string dtype = "f32")
    {
        var o = new JsonObject
        {
            ["activation_function"] = ActivationFunction,
            ["architectures"] = new JsonArray("GPT2LMHeadModel"),
            ["attn_pdrop"] = Round(AttnPdrop), ["bos_token_id"] = BosTokenId, ["embd_pdrop"] = Round(EmbdPdrop),
                ["eos_token_id"] = EosTokenId,
            ["initializer_range"] = 0.02,
                ["layer_norm_epsilon"] = double.Parse(
                LayerNormEpsilon.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
                System.Globalization.CultureInfo.InvariantCulture), ["model_type"] = "gpt2",
            ["n_embd"] = NEmbd, ["n_head"] = NHead, ["n_inner"] = NInner, ["n_layer"] = NLayer,
            ["n_positions"] = NPositions,
            ["reorder_and_upcast_attn"] = false, ["resid_pdrop"] = Round(ResidPdrop),
                ["scale_attn_by_inverse_layer_idx"] = false,
            ["scale_attn_weights"] = true,
                ["torch_dtype"] = dtype switch { "f16" => "float16", "bf16" => "bfloat16", _ => "float32" },
                ["use_cache"] = true, ["vocab_size"] = VocabSize,
        };
        if (dtype is "q8_0" or "q4_0") o["quantization_config"] = new JsonObject
        {
            ["quant_method"] = dtype,
            ["block_size"] = Q8_0.BlockSize,
        };
        return o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    /// <summary>The generation_config.json written beside a new or trained model: just its BOS and EOS ids.</summary>
    public string GenerationConfigJson() =>
        $"{{\n  \"bos_token_id\": {BosTokenId},\n  \"eos_token_id\": {EosTokenId}\n}}\n";

    /// <summary>A float as the shortest decimal that reads back to it (0.1f → 0.1, not 0.10000000149).</summary>
    private static double Round(float f) =>
        double.Parse(f.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        System.Globalization.CultureInfo.InvariantCulture);
}
