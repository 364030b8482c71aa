namespace ScratchGpt.Model;

/// <summary>What <see cref="Gpt2Model.Forward(ReadOnlySpan{int}, ForwardOptions?)"/> returns besides the logits.</summary>
public sealed record ForwardOptions
{
    /// <summary>Return the post-softmax attention weights of every layer (output_attentions).</summary>
    public bool Attentions { get; init; }

    /// <summary>Return the hidden states: the embeddings, each block's output, and the last after ln_f (output_hidden_states).</summary>
    public bool HiddenStates { get; init; }

    /// <summary>Logits for every position (true) or only the last one (false; what decoding needs).</summary>
    public bool AllLogits { get; init; } = true;

    /// <summary>Leave the logits in the session's device buffer (the decode loop reads them itself: all of
    /// them into its own array, or only their argmax), so no array is allocated per token.</summary>
    internal bool LogitsStayOnDevice { get; init; }
}

/// <summary>
/// The outputs of one forward pass over T new tokens for a batch of one sequence.
/// Shapes (row-major, batch dimension of 1 left out of the arrays):
///   Logits        [T, vocab]  (or [1, vocab] when only the last position was asked for)
///   Attentions    [layers][heads, T, past + T]     — as output_attentions' [batch, heads, seq, seq]
///   HiddenStates  [layers + 1][T, n_embd]          — 0 = embeddings, last = after ln_f
/// </summary>
public sealed record ForwardResult(float[] Logits, int Positions, int VocabSize, float[][]? Attentions, float[][]? HiddenStates)
{
    /// <summary>The logits row of position <paramref name="t"/> (0-based among the rows returned).</summary>
    public ReadOnlySpan<float> Row(int t) => Logits.AsSpan(t * VocabSize, VocabSize);
}
