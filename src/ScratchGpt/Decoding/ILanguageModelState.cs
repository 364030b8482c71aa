namespace ScratchGpt.Decoding;

/// <summary>One sequence and its cache.</summary>
public interface ILanguageModelState : IDisposable
{
    /// <summary>Tokens processed so far.</summary>
    int Length { get; }

    /// <summary>Appends <paramref name="ids"/> and writes the float32 logits for the token after the last of
    /// them.</summary>
    void Append(ReadOnlySpan<int> ids, Span<float> nextLogits);

    /// <summary>Appends <paramref name="ids"/> and returns only the index of the largest next-token logit
    /// (lowest on ties): what plain greedy decoding needs, computed where the logits are.</summary>
    int AppendArgmax(ReadOnlySpan<int> ids);

    /// <summary>Makes this sequence a copy of <paramref name="other"/> (beam search reorders beams this way).</summary>
    void CopyFrom(ILanguageModelState other);
}
