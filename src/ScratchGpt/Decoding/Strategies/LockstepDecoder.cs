namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Several sequences (greedy, sampling, epsilon-greedy, unweighted) decoded in lock-step: each step every
/// unfinished sequence's <see cref="SequenceStepper"/> chooses its token, then one
/// <see cref="ILanguageModel.AppendEach"/> appends them all, so the model reads its weights once per step for all
/// of them. A sequence that finishes drops out of the next steps. Each stepper has its own sampler and sees only
/// its own logits, so every sequence gets what it would get decoded alone.
/// </summary>
public sealed class LockstepDecoder(ILanguageModel model)
{
    /// <summary>Decodes after prompts whose states and last logits [b·V ..] are given; returns the steps taken.</summary>
    public int Decode(IReadOnlyList<ILanguageModelState> states, IReadOnlyList<SequenceStepper> steppers, float[] logits, CancellationToken ct)
    {
        int V = model.VocabSize, steps = 0;
        var active = Enumerable.Range(0, states.Count).Where(b => !steppers[b].Finished).ToList();
        var activeStates = new List<ILanguageModelState>(active.Count);
        var tokens = new List<int>(active.Count);
        var stepLogits = new float[states.Count * V];
        while (active.Count > 0)
        {
            ct.ThrowIfCancellationRequested();
            steps++;
            foreach (int b in active) steppers[b].Step(logits.AsSpan(b * V, V));
            active.RemoveAll(b => steppers[b].Finished);
            if (active.Count == 0) break;
            activeStates.Clear(); tokens.Clear();
            foreach (int b in active) { activeStates.Add(states[b]); tokens.Add(steppers[b].Ids[^1]); }
            model.AppendEach(activeStates, System.Runtime.InteropServices.CollectionsMarshal.AsSpan(tokens), stepLogits);
            for (int i = 0; i < active.Count; i++) stepLogits.AsSpan(i * V, V).CopyTo(logits.AsSpan(active[i] * V, V));
        }
        return steps;
    }
}
