namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// The processors a <see cref="GenerationConfig"/> asks for, in transformers' order:
///   processors: repetition penalty → no-repeat n-gram → min length → min new tokens
///   warpers (sampling only, after all processors): temperature → top-k → top-p
/// </summary>
public sealed class LogitsProcessorList
{
    public IReadOnlyList<ILogitsProcessor> Processors { get; }
    public IReadOnlyList<ILogitsProcessor> Warpers { get; }

    public LogitsProcessorList(IReadOnlyList<ILogitsProcessor> processors, IReadOnlyList<ILogitsProcessor> warpers)
    {
        Processors = processors;
        Warpers = warpers;
    }

    public static LogitsProcessorList From(GenerationConfig c, int promptLength)
    {
        var processors = new List<ILogitsProcessor>();
        if (c.RepetitionPenalty != 1.0f) processors.Add(new RepetitionPenaltyLogitsProcessor(c.RepetitionPenalty));
        if (c.NoRepeatNgramSize > 0) processors.Add(new NoRepeatNGramLogitsProcessor(c.NoRepeatNgramSize));
        if (c.EosTokenId is int eos)
        {
            // generate() turns min_new_tokens into min_length = prompt + M and adds both processors.
            int minLength = c.EffectiveMinLength(promptLength);
            if (minLength > 0) processors.Add(new MinLengthLogitsProcessor(minLength, eos));
            if (c.MinNewTokens is int mn && mn > 0)
                processors.Add(new MinNewTokensLengthLogitsProcessor(promptLength, mn, eos));
        }

        // Epsilon-greedy draws from the full distribution by definition, so it gets no warpers.
        var warpers = new List<ILogitsProcessor>();
        if ((c.DoSample || c.Unweighted) && c.Epsilon is null)
        {
            // Beam sampling keeps at least 2 tokens per beam, as transformers does.
            int minKeep = c.NumBeams > 1 ? 2 : 1;
            if (c.Temperature != 1.0f) warpers.Add(new TemperatureLogitsWarper(c.Temperature));
            if (c.TopK != 0) warpers.Add(new TopKLogitsWarper(c.TopK, minKeep));
            if (c.TopP < 1.0f) warpers.Add(new TopPLogitsWarper(c.TopP, minKeep));
        }
        return new LogitsProcessorList(processors, warpers);
    }

    /// <summary>Every processor, then every warper (none unless sampling), on one sequence's scores.</summary>
    public void Apply(ReadOnlySpan<int> ids, Span<float> scores)
    {
        foreach (var p in Processors) p.Process(ids, scores);
        foreach (var w in Warpers) w.Process(ids, scores);
    }
}
