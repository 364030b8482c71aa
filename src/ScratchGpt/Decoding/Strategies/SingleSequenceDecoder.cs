namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// The decoding loop for one sequence (greedy, sampling, epsilon-greedy, unweighted): a <see cref="SequenceStepper"/>
/// chooses each token, this appends it to the sequence's state. Yields each new token as soon as it is chosen,
/// so callers can stream.
/// </summary>
public sealed class SingleSequenceDecoder(ILanguageModel model, GenerationConfig config, TokenSampler sampler)
{
    public List<StepTrace>? Trace { get; init; }
    public int TraceChoices { get; init; } = 5;

    /// <summary>Set when cancellation ended the sequence before it finished.</summary>
    public bool Stopped { get; private set; }

    /// <summary>Decodes after a prompt whose state and last logits are given; the state is extended in place.
    /// Cancellation ends the sequence after the step in flight (no exception): the tokens so far stand.</summary>
    public IEnumerable<int> Decode(ILanguageModelState state, List<int> ids, float[] logits, int promptLength,
        CancellationToken ct)
    {
        var stepper = new SequenceStepper(model, config, sampler, ids, promptLength)
        {
            Trace = Trace,
            TraceChoices = TraceChoices,
        };
        var next = new int[1];
        int? chosen = null;   // the device's argmax of the last step, when that is all greedy needs
        while (!stepper.Finished)
        {
            if (ct.IsCancellationRequested) { Stopped = true; yield break; }
            int token = chosen is int c ? stepper.Take(c) : stepper.Step(logits);
            yield return token;
            if (stepper.Finished) yield break;
            next[0] = token;
            if (stepper.ArgmaxOnly) chosen = state.AppendArgmax(next);
            else state.Append(next, logits);
        }
    }
}
