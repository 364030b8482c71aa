namespace ScratchGpt.Decoding;

/// <summary>
/// All the decoding layer knows of a model: it can start a sequence and give the next-token logits
/// after appending tokens to it. Any backend (CPU, OpenCL, CUDA) looks the same from here.
/// </summary>
public interface ILanguageModel
{
    int VocabSize { get; }

    /// <summary>The longest sequence the model accepts (n_positions).</summary>
    int MaxPositions { get; }

    /// <summary>A new, empty sequence with room for <paramref name="capacity"/> tokens.</summary>
    ILanguageModelState CreateState(int capacity);

    /// <summary>One token more for each of several sequences: appends ids[b] to states[b] and writes its next-token
    /// logits to nextLogits[b·VocabSize ..]. The same as an Append per sequence; a model may run them as one
    /// batch.</summary>
    void AppendEach(IReadOnlyList<ILanguageModelState> states, ReadOnlySpan<int> ids, Span<float> nextLogits)
    {
        for (int b = 0; b < states.Count; b++)
            states[b].Append(ids.Slice(b, 1), nextLogits.Slice(b * VocabSize, VocabSize));
    }
}
