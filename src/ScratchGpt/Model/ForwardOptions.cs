namespace ScratchGpt.Model;

/// <summary>What <see cref="Gpt2Model.Forward(ReadOnlySpan{int}, ForwardOptions?)"/> returns besides the
/// logits.</summary>
public sealed record ForwardOptions
{
    /// <summary>Return the post-softmax attention weights of every layer (output_attentions).</summary>
    public bool Attentions { get; init; }

    /// <summary>Return the hidden states: the embeddings, each block's output, and the last after ln_f
    /// (output_hidden_states).</summary>
    public bool HiddenStates { get; init; }

    /// <summary>Logits for every position (true) or only the last one (false; what decoding needs).</summary>
    public bool AllLogits { get; init; } = true;

    /// <summary>Hooks that read or replace activations under TransformerLens' names (see
    /// <see cref="ForwardHooks"/>).</summary>
    public ForwardHooks? Hooks { get; init; }

    /// <summary>Leave the logits in the session's device buffer (the decode loop reads them itself: all of
    /// them into its own array, or only their argmax), so no array is allocated per token.</summary>
    internal bool LogitsStayOnDevice { get; init; }
}
