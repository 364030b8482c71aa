using ScratchGpt.Decoding.Processors;

namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// One sequence's decoding (greedy, sampling, epsilon-greedy, unweighted), a step at a time:
///     logits of the last position → processors → warpers (sampling) → chooser → the next token;
/// finished after EOS or at max_length.
/// It never touches the model: whoever drives it appends the chosen token (alone, or in a batch with other
/// sequences) and hands back the next logits. <see cref="SingleSequenceDecoder"/> and <see cref="LockstepDecoder"/> do.
/// </summary>
public sealed class SequenceStepper
{
    private readonly GenerationConfig _config;
    private readonly LogitsProcessorList _list;
    private readonly ITokenChooser _chooser;
    private readonly int _maxLength;
    private readonly float[] _scores, _distribution;

    public List<int> Ids { get; }
    public List<StepTrace>? Trace { get; init; }
    public int TraceChoices { get; init; } = 5;
    public bool Finished { get; private set; }

    /// <summary>Plain greedy with nothing to record: the argmax of the raw logits is the choice, so a model may
    /// compute it where the logits live (one int per token back from a GPU instead of vocab_size floats).</summary>
    public bool ArgmaxOnly => _chooser is GreedyChooser && _list.Processors.Count == 0 && Trace is null;

    public SequenceStepper(ILanguageModel model, GenerationConfig config, TokenSampler sampler, List<int> ids,
        int promptLength)
    {
        _config = config;
        _maxLength = Math.Min(config.EffectiveMaxLength(promptLength), model.MaxPositions);
        _list = LogitsProcessorList.From(config, promptLength);
        _chooser = ITokenChooser.For(config, sampler);
        _scores = new float[model.VocabSize];
        _distribution = new float[model.VocabSize];
        Ids = ids;
        Finished = ids.Count >= _maxLength;
    }

    /// <summary>Chooses the next token from the logits after the last one, and takes it.</summary>
    public int Step(ReadOnlySpan<float> logits)
    {
        logits.CopyTo(_scores);
        var ids = System.Runtime.InteropServices.CollectionsMarshal.AsSpan(Ids);
        _list.Apply(ids, _scores);                          // processors, then warpers when sampling
        int token = _chooser.Choose(_scores, _distribution);
        Trace?.Add(new StepTrace(ids.ToArray(), TopChoices(_distribution, TraceChoices), token));
        return Take(token);
    }

    /// <summary>Takes a token chosen elsewhere (the device's argmax, when <see cref="ArgmaxOnly"/>).</summary>
    public int Take(int token)
    {
        if (Finished) throw new InvalidOperationException("the sequence is already finished");
        Ids.Add(token);
        Finished = token == _config.EosTokenId || Ids.Count >= _maxLength;
        return token;
    }

    internal static (int, float)[] TopChoices(ReadOnlySpan<float> probs, int k) =>
        k <= 0 ? [] : TokenMath.TopK(probs, k).Select(t => (t.Index, t.Value)).ToArray();
}
