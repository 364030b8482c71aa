using ScratchGpt.Decoding.Processors;

namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// The decoding loop for one sequence (greedy, sampling, epsilon-greedy, unweighted):
///     logits of the last position → processors → chooser → append; stop after EOS or at max_length.
/// Yields each new token as soon as it is chosen, so callers can stream.
/// </summary>
public sealed class SingleSequenceDecoder(ILanguageModel model, GenerationConfig config, TokenSampler sampler)
{
    public List<StepTrace>? Trace { get; init; }
    public int TraceChoices { get; init; } = 5;

    /// <summary>Decodes after a prompt whose state and last logits are given; the state is extended in place.</summary>
    public IEnumerable<int> Decode(ILanguageModelState state, List<int> ids, float[] logits, int promptLength, CancellationToken ct)
    {
        int maxLength = Math.Min(config.EffectiveMaxLength(promptLength), model.MaxPositions);
        var list = LogitsProcessorList.From(config, promptLength);
        var chooser = ITokenChooser.For(config, list, sampler);
        var scores = new float[model.VocabSize];
        var distribution = new float[model.VocabSize];
        var next = new int[1];
        // Plain greedy (no processors, no step table) needs only the argmax: the model computes it where the
        // logits live, so on a GPU one int per token crosses back instead of vocab_size floats.
        bool argmaxOnly = chooser is GreedyChooser && list.Processors.Count == 0 && Trace is null;
        int? chosen = null;
        while (ids.Count < maxLength)
        {
            ct.ThrowIfCancellationRequested();
            int token;
            if (chosen is int c) token = c;
            else
            {
                logits.CopyTo(scores, 0);
                var span = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ids);
                list.ApplyProcessors(span, scores);
                token = chooser.Choose(span, scores, distribution);
                Trace?.Add(new StepTrace(ids.ToArray(), TopChoices(distribution, TraceChoices), token));
            }
            ids.Add(token);
            yield return token;
            if (token == config.EosTokenId || ids.Count >= maxLength) yield break;
            next[0] = token;
            if (argmaxOnly) chosen = state.AppendArgmax(next);
            else state.Append(next, logits);
        }
    }

    internal static (int, float)[] TopChoices(ReadOnlySpan<float> probs, int k) =>
        k <= 0 ? [] : TokenMath.TopK(probs, k).Select(t => (t.Index, t.Value)).ToArray();
}
