using System.Runtime.CompilerServices;
using ScratchGpt.Decoding.Strategies;

namespace ScratchGpt.Decoding;

/// <summary>
/// generate(): picks the strategy the config describes and runs it on any <see cref="ILanguageModel"/>.
///   num_beams = 1: greedy, multinomial sampling, epsilon-greedy or unweighted sampling (SingleSequenceDecoder)
///   num_beams > 1: beam search, or beam sampling with do_sample (BeamSearch)
/// </summary>
public sealed class Generator(ILanguageModel model)
{
    /// <summary>When set, each step's top candidates are recorded (the step table).</summary>
    public int TraceChoices { get; init; }

    /// <summary>Called with each new token as it is chosen, for a run of one sequence (num_beams 1, one return
    /// sequence): what a caller streams, while the run still returns its whole result.</summary>
    public Action<int>? OnToken { get; init; }

    /// <summary>Runs generate(). Cancelling <paramref name="ct"/> ends it after the step in flight; the result holds
    /// the tokens so far and says <see cref="GenerationResult.Stopped"/>.</summary>
    public GenerationResult Generate(int[] promptIds, GenerationConfig config, CancellationToken ct = default)
    {
        Check(promptIds, config);
        var sampler = new TokenSampler(config.Seed);
        var trace = TraceChoices > 0 ? new List<StepTrace>() : null;
        if (config.NumBeams > 1)
            return new BeamSearch(model, config, sampler) { Trace = trace, TraceChoices = TraceChoices }.Run(promptIds,
                ct);

        int P = promptIds.Length;
        using var promptState = model.CreateState(config.EffectiveMaxLength(P));
        var promptLogits = new float[model.VocabSize];
        promptState.Append(promptIds, promptLogits);

        var rows = new List<GeneratedSequence>();
        int rowCount = config.NumReturnSequences;
        bool stopped;
        if (rowCount == 1)
        {
            var ids = new List<int>(promptIds);
            var decoder = new SingleSequenceDecoder(model, config, sampler)
            {
                Trace = trace,
                TraceChoices = TraceChoices,
            };
            foreach (int id in decoder.Decode(promptState, ids, promptLogits, P, ct)) OnToken?.Invoke(id);
            stopped = decoder.Stopped;
            rows.Add(new GeneratedSequence(ids.ToArray(), ids.Skip(P).ToArray()));
        }
        else
        {
            // Several return sequences: each continues its own copy of the prompt's cache, all in lock-step (one
            // batched model step per token). They share the generator and draw from it in row order at each step,
            // as generate() draws each step's tokens for all rows from one torch generator.
            var steppers = Enumerable.Range(0, rowCount)
                .Select(r =>
                    new SequenceStepper(model, config, sampler, [.. promptIds], P) { Trace = r == 0 ? trace : null,
                TraceChoices = TraceChoices })
                .ToList();
            new LockstepDecoder(model).Decode(steppers, _ => config.EffectiveMaxLength(P), (_, state, next) =>
            {
                state.CopyFrom(promptState);
                promptLogits.CopyTo(next);
            }, ct);
            rows.AddRange(steppers.Select(st => new GeneratedSequence(st.Ids.ToArray(), st.Ids.Skip(P).ToArray())));
            stopped = steppers.Any(st => !st.Finished);
        }
        int steps = rows.Max(r => r.NewIds.Length);
        // Rows of different lengths are padded to the longest, as a batch would be.
        int width = rows.Max(s => s.Ids.Length);
        int pad = config.PadTokenId ?? config.EosTokenId ?? 0;
        rows = rows.Select(s => s.Ids.Length == width ? s : Pad(s, width, pad, P)).ToList();
        return new GenerationResult(promptIds, rows, steps, trace ?? [], stopped);
    }

    /// <summary>
    /// Several prompts at once (transformers' left-padded batch). Each prompt is decoded with its own
    /// cache, and sampling gets its own generator seeded with <c>seed</c>, so every row is exactly what
    /// that prompt gives alone; the rows are then laid out as a left-padded batch with its attention mask.
    /// With one row per prompt and no beams the prompts decode in lock-step (<see cref="LockstepDecoder"/>):
    /// one batched model step per token for all of them.
    /// </summary>
    public BatchGenerationResult GenerateBatch(IReadOnlyList<int[]> prompts, GenerationConfig config,
        CancellationToken ct = default)
    {
        if (prompts.Count == 0) throw new GenerationConfigException("a batch needs at least one prompt");
        // One row per prompt without beams: the prompts decode in lock-step, one batched model step for all.
        var results = config.NumBeams == 1 && config.NumReturnSequences == 1 && prompts.Count > 1
            ? GenerateLockstep(prompts, config, ct)
            : prompts.Select(p => Generate(p, config, ct)).ToList();
        int longestPrompt = prompts.Max(p => p.Length);
        int width = results.Max(r => longestPrompt + r.Sequences.Max(s => s.NewIds.Length));
        int pad = config.PadTokenId ?? config.EosTokenId ?? 0;
        var rows = new List<int[]>(); var masks = new List<int[]>();
        foreach (var r in results)
            foreach (var s in r.Sequences)
            {
                int left = longestPrompt - r.PromptIds.Length;
                var row = Enumerable.Repeat(pad, width).ToArray();
                var mask = new int[width];
                r.PromptIds.CopyTo(row, left);
                s.NewIds.CopyTo(row, longestPrompt);
                // generate() extends the mask by 1 per step, pads included
                for (int i = left; i < width; i++) mask[i] = 1;
                rows.Add(row); masks.Add(mask);
            }
        return new BatchGenerationResult(results, rows.ToArray(), masks.ToArray());
    }

    private List<GenerationResult> GenerateLockstep(IReadOnlyList<int[]> prompts, GenerationConfig config,
        CancellationToken ct)
    {
        foreach (var p in prompts) Check(p, config);
        var steppers = prompts.Select(p =>
            new SequenceStepper(model, config, new TokenSampler(config.Seed), [.. p], p.Length)
            { Trace = TraceChoices > 0 ? [] : null, TraceChoices = TraceChoices }).ToList();
        new LockstepDecoder(model).Decode(steppers, b => config.EffectiveMaxLength(prompts[b].Length),
            (b, state, next) => state.Append(prompts[b], next), ct);   // each prompt's own prefill
        return prompts.Select((p, b) =>
        {
            var ids = steppers[b].Ids.ToArray();
            return new GenerationResult(p, [new GeneratedSequence(ids, ids[p.Length..])], ids.Length - p.Length,
                steppers[b].Trace ?? [],
                Stopped: !steppers[b].Finished);   // only cancellation leaves a stepper unfinished
        }).ToList();
    }

    /// <summary>Streams the new tokens of one sequence as they are chosen (num_beams = 1, one return
    /// sequence).</summary>
    public async IAsyncEnumerable<int> StreamAsync(int[] promptIds, GenerationConfig config,
        [EnumeratorCancellation] CancellationToken ct = default)
    {
        Check(promptIds, config);
        if (config.NumBeams > 1 || config.NumReturnSequences > 1)
            throw new GenerationConfigException("streaming needs num_beams 1 and num_return_sequences 1 (beam search " +
                "knows its result only at the end)");
        var sampler = new TokenSampler(config.Seed);
        using var state = model.CreateState(config.EffectiveMaxLength(promptIds.Length));
        var logits = new float[model.VocabSize];
        await Task.Run(() => state.Append(promptIds, logits), ct).ConfigureAwait(false);
        var decoder = new SingleSequenceDecoder(model, config, sampler);
        using var steps = decoder.Decode(state, [.. promptIds], logits, promptIds.Length, ct).GetEnumerator();
        while (await Task.Run(steps.MoveNext).ConfigureAwait(false))   // cancellation ends the decoder's loop
            yield return steps.Current;
    }

    /// <summary>Everything that can be wrong with a prompt and a config, checked before any work or output.</summary>
    public void Check(int[] promptIds, GenerationConfig config)
    {
        config.Validate();
        if (promptIds.Length == 0)
            throw new GenerationConfigException("the prompt is empty: give at least one token (the CLI starts an " +
                "empty prompt from the BOS token)");
        int maxLength = config.EffectiveMaxLength(promptIds.Length);
        if (promptIds.Length >= maxLength && config.MaxNewTokens is null)
            throw new GenerationConfigException($"max_length ({maxLength}) must be larger than the prompt " +
                $"({promptIds.Length} tokens): raise --max-length or use --max-new-tokens");
        if (maxLength > model.MaxPositions)
            throw new GenerationConfigException(
                $"prompt ({promptIds.Length} tokens) + new tokens = {maxLength} is more than the model's n_positions " +
                $"({model.MaxPositions}): shorten the prompt or lower --max-new-tokens");
        foreach (int id in promptIds)
            if ((uint)id >= (uint)model.VocabSize)
                throw new GenerationConfigException($"prompt token id {id} is outside the vocabulary " +
                    $"(0..{model.VocabSize - 1})");
    }

    private static GeneratedSequence Pad(GeneratedSequence s, int width, int pad, int promptLength)
    {
        var ids = new int[width];
        Array.Fill(ids, pad);
        s.Ids.CopyTo(ids, 0);
        return new GeneratedSequence(ids, ids[promptLength..], s.SequenceScore);
    }
}
