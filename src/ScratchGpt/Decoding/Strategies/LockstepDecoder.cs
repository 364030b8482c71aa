namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Several sequences (greedy, sampling, epsilon-greedy, unweighted) decoded in lock-step: each step every
/// unfinished sequence's <see cref="SequenceStepper"/> chooses its token, then one
/// <see cref="ILanguageModel.AppendEach"/> appends them all, so the model reads its weights once per step for all
/// of them. A sequence that finishes drops out of the next steps. Each stepper sees only its own logits, so a
/// sequence with its own sampler gets what it would get decoded alone; steppers that share a sampler draw from it
/// in row order at each step.
/// </summary>
public sealed class LockstepDecoder(ILanguageModel model)
{
    /// <summary>How sequence <paramref name="index"/> begins in its fresh <paramref name="state"/> (its prompt
    /// appended, or a prompt's cache copied in), with the logits after it written to
    /// <paramref name="nextLogits"/>.</summary>
    public delegate void StartSequence(int index, ILanguageModelState state, Span<float> nextLogits);

    /// <summary>Opens a state of <paramref name="capacity"/>(b) positions for each stepper, starts it, decodes all of
    /// them in lock-step until every stepper is finished or <paramref name="ct"/> is cancelled (then the steppers hold
    /// the tokens chosen so far), and releases the states.</summary>
    public void Decode(IReadOnlyList<SequenceStepper> steppers, Func<int, int> capacity, StartSequence start,
        CancellationToken ct)
    {
        int V = model.VocabSize, B = steppers.Count;
        var states = new List<ILanguageModelState>(B);
        try
        {
            var logits = new float[B * V];   // sequence b's next-token logits at [b·V, (b+1)·V)
            for (int b = 0; b < B; b++)
            {
                states.Add(model.CreateState(capacity(b)));
                start(b, states[b], logits.AsSpan(b * V, V));
            }
            var active = Enumerable.Range(0, B).Where(b => !steppers[b].Finished).ToList();
            var activeStates = new List<ILanguageModelState>(B);
            var tokens = new List<int>(B);
            var stepLogits = new float[B * V];
            while (active.Count > 0 && !ct.IsCancellationRequested)
            {
                foreach (int b in active) steppers[b].Step(logits.AsSpan(b * V, V));
                active.RemoveAll(b => steppers[b].Finished);
                if (active.Count == 0) break;
                activeStates.Clear(); tokens.Clear();
                foreach (int b in active) { activeStates.Add(states[b]); tokens.Add(steppers[b].Ids[^1]); }
                model.AppendEach(activeStates, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens),
                    stepLogits);
                for (int i = 0; i < active.Count; i++)
                    stepLogits.AsSpan(i * V, V).CopyTo(logits.AsSpan(active[i] * V, V));
            }
        }
        finally { foreach (var s in states) s.Dispose(); }
    }
}
