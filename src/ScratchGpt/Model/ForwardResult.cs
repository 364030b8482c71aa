namespace ScratchGpt.Model;

/// <summary>
/// The outputs of one forward pass over T new tokens for a batch of one sequence.
/// Shapes (row-major, batch dimension of 1 left out of the arrays):
///   Logits        [T, vocab]  (or [1, vocab] when only the last position was asked for)
///   Attentions    [layers][heads, T, past + T]     — as output_attentions' [batch, heads, seq, seq]
///   HiddenStates  [layers + 1][T, n_embd]          — 0 = embeddings, last = after ln_f
/// </summary>
public sealed record ForwardResult(float[] Logits, int Positions, int VocabSize, float[][]? Attentions,
    float[][]? HiddenStates)
{
    /// <summary>The logits row of position <paramref name="t"/> (0-based among the rows returned).</summary>
    public ReadOnlySpan<float> Row(int t) => Logits.AsSpan(t * VocabSize, VocabSize);
}
