using System.Text.Json.Nodes;

namespace ScratchGpt.Decoding;

/// <summary>
/// Generation settings with Hugging Face's names and defaults (transformers 4.43), including the
/// surprising ones: sampling uses top_k = 50 unless top_k = 0 is given, and max_length defaults to 20
/// when neither max_length nor max_new_tokens is set.
/// </summary>
public sealed record GenerationConfig
{
    public int? MaxNewTokens { get; init; }
    public int? MaxLength { get; init; }
    public int? MinNewTokens { get; init; }
    public int? MinLength { get; init; }
    public bool DoSample { get; init; }
    public float Temperature { get; init; } = 1.0f;
    public int TopK { get; init; } = 50;
    public float TopP { get; init; } = 1.0f;
    public int NumBeams { get; init; } = 1;
    public double LengthPenalty { get; init; } = 1.0;
    public EarlyStopping EarlyStopping { get; init; } = EarlyStopping.False;
    public int NoRepeatNgramSize { get; init; }
    public float RepetitionPenalty { get; init; } = 1.0f;
    public int NumReturnSequences { get; init; } = 1;
    public int? EosTokenId { get; init; }
    public int? PadTokenId { get; init; }
    public int? BosTokenId { get; init; }
    public int? Seed { get; init; }

    /// <summary>Epsilon-greedy: with probability ε take the argmax, otherwise sample from the full distribution. ε = 1
    /// is greedy.</summary>
    public double? Epsilon { get; init; }

    /// <summary>Teaching aid: pick uniformly among the tokens the processors and warpers leave, ignoring their
    /// weights.</summary>
    public bool Unweighted { get; init; }

    /// <summary>Total length limit (prompt included) for a prompt of <paramref name="promptLength"/> tokens.</summary>
    public int EffectiveMaxLength(int promptLength) =>
        MaxNewTokens is int n ? promptLength + n : MaxLength ?? 20;

    /// <summary>min_length in effect: min_new_tokens is turned into prompt + M, as generate() does.</summary>
    public int EffectiveMinLength(int promptLength) =>
        MinNewTokens is int m ? promptLength + m : MinLength ?? 0;

    public string StrategyName =>
        Epsilon is not null ? "epsilon-greedy"
        : Unweighted ? "unweighted sampling"
        : NumBeams > 1 ? (DoSample ? "beam sampling" : "beam search")
        : DoSample ? "multinomial sampling" : "greedy";

    /// <summary>Checks every parameter as transformers does; the message names the parameter and its allowed
    /// range.</summary>
    public void Validate()
    {
        static void Fail(string name, object value, string range) =>
            throw new GenerationConfigException($"{name} must be {range}, got {value}");
        if (MaxNewTokens is int mnt && mnt <= 0) Fail("max_new_tokens (--max-new-tokens)", mnt, "a positive integer");
        if (MaxLength is int ml && ml <= 0) Fail("max_length (--max-length)", ml, "a positive integer");
        if (MinNewTokens is int mn && mn < 0) Fail("min_new_tokens (--min-new-tokens)", mn, "≥ 0");
        if (MinLength is int mil && mil < 0) Fail("min_length (--min-length)", mil, "≥ 0");
        if (NumBeams < 1) Fail("num_beams (--num-beams)", NumBeams, "≥ 1");
        if (NumReturnSequences < 1) Fail("num_return_sequences (--num-return-sequences)", NumReturnSequences, "≥ 1");
        if (NoRepeatNgramSize < 0)
            Fail("no_repeat_ngram_size (--no-repeat-ngram-size)", NoRepeatNgramSize, "≥ 0 (0 disables)");
        if (!(RepetitionPenalty > 0) || float.IsInfinity(RepetitionPenalty))
            Fail("repetition_penalty (--repetition-penalty)", RepetitionPenalty, "a finite float > 0 (1.0 disables)");
        if (double.IsNaN(LengthPenalty) || double.IsInfinity(LengthPenalty))
            Fail("length_penalty (--length-penalty)", LengthPenalty, "a finite float");
        bool sampling = DoSample || Unweighted || Epsilon is not null;
        if (sampling && (!(Temperature > 0) || float.IsInfinity(Temperature)))
            Fail("temperature (--temperature)", Temperature,
                "a finite float > 0 when sampling (for greedy decoding leave out --do-sample)");
        if (TopK < 0) Fail("top_k (--top-k)", TopK, "≥ 0 (0 disables)");
        if (!(TopP > 0 && TopP <= 1)) Fail("top_p (--top-p)", TopP, "in (0, 1]");
        if (Epsilon is double e && !(e >= 0 && e <= 1)) Fail("epsilon (--epsilon)", e, "in [0, 1]");
        if (NumBeams > 1 && (Epsilon is not null || Unweighted))
            throw new GenerationConfigException("epsilon-greedy and unweighted sampling pick one token per step: use " +
                "them with num_beams 1");
        if (NumBeams > 1 && NumReturnSequences > NumBeams)
            Fail("num_return_sequences (--num-return-sequences)", NumReturnSequences,
                $"≤ num_beams ({NumBeams}) for beam search");
        if (NumBeams == 1 && !sampling && NumReturnSequences > 1)
            Fail("num_return_sequences (--num-return-sequences)", NumReturnSequences,
                "1 for greedy search (use --do-sample or --num-beams)");
    }

    /// <summary>The settings of a generation_config.json object (the keys this record has; others are ignored).
    /// <paramref name="source"/> names the file in errors; reading it is the loader's job.</summary>
    public static GenerationConfig FromJson(JsonObject o, string source)
    {
        T? Get<T>(string key) where T : struct
        {
            if (o[key] is not JsonValue v) return null;
            try { return v.GetValue<T>(); }
            catch (Exception e) when (e is FormatException or InvalidOperationException)
            {
                if (typeof(T) == typeof(float) && v.TryGetValue(out double d)) return (T)(object)(float)d;
                if (typeof(T) == typeof(double) && v.TryGetValue(out int i)) return (T)(object)(double)i;
                throw new GenerationConfigException($"{source}: '{key}' has an invalid value {v.ToJsonString()}");
            }
        }
        int? FirstInt(string key) => o[key] switch
        {
            JsonArray a when a.Count > 0 && a[0] is JsonValue v && v.TryGetValue(out int i) => i,
            JsonValue v when v.TryGetValue(out int i) => i,
            _ => null,
        };
        var d = new GenerationConfig();
        var es = o["early_stopping"] switch
        {
            JsonValue v when v.TryGetValue(out bool b) => b ? EarlyStopping.True : EarlyStopping.False,
            JsonValue v when v.TryGetValue(out string? s) && s == "never" => EarlyStopping.Never,
            _ => d.EarlyStopping,
        };
        return d with
        {
            MaxNewTokens = Get<int>("max_new_tokens"),
            MaxLength = Get<int>("max_length"),
            MinNewTokens = Get<int>("min_new_tokens"),
            MinLength = Get<int>("min_length") is int ml && ml > 0 ? ml : null,
            DoSample = Get<bool>("do_sample") ?? d.DoSample,
            Temperature = Get<float>("temperature") ?? d.Temperature,
            TopK = Get<int>("top_k") ?? d.TopK,
            TopP = Get<float>("top_p") ?? d.TopP,
            NumBeams = Get<int>("num_beams") ?? d.NumBeams,
            LengthPenalty = Get<double>("length_penalty") ?? d.LengthPenalty,
            EarlyStopping = es,
            NoRepeatNgramSize = Get<int>("no_repeat_ngram_size") ?? d.NoRepeatNgramSize,
            RepetitionPenalty = Get<float>("repetition_penalty") ?? d.RepetitionPenalty,
            NumReturnSequences = Get<int>("num_return_sequences") ?? d.NumReturnSequences,
            EosTokenId = FirstInt("eos_token_id"),
            PadTokenId = FirstInt("pad_token_id"),
            BosTokenId = FirstInt("bos_token_id"),
        };
    }

    /// <summary>The settings as name = value lines, for --verbose.</summary>
    public IEnumerable<(string Name, string Value)> Describe(int promptLength)
    {
        yield return ("strategy", StrategyName);
        yield return ("max_length",
            $"{EffectiveMaxLength(promptLength)} (prompt {promptLength} + " +
            $"{EffectiveMaxLength(promptLength) - promptLength} new)");
        yield return ("min_length", EffectiveMinLength(promptLength).ToString());
        yield return ("do_sample", DoSample.ToString().ToLowerInvariant());
        yield return ("temperature", Temperature.ToString("R"));
        yield return ("top_k", TopK.ToString());
        yield return ("top_p", TopP.ToString("R"));
        yield return ("num_beams", NumBeams.ToString());
        yield return ("length_penalty", LengthPenalty.ToString("R"));
        yield return ("early_stopping", EarlyStopping.ToString().ToLowerInvariant());
        yield return ("no_repeat_ngram_size", NoRepeatNgramSize.ToString());
        yield return ("repetition_penalty", RepetitionPenalty.ToString("R"));
        yield return ("num_return_sequences", NumReturnSequences.ToString());
        yield return ("eos_token_id", EosTokenId?.ToString() ?? "none");
        yield return ("pad_token_id", PadTokenId?.ToString() ?? "none");
        yield return ("seed", Seed?.ToString() ?? "random");
        if (Epsilon is double e) yield return ("epsilon", e.ToString("R"));
    }
}
