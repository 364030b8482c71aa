namespace ScratchGpt.Decoding;

/// <summary>
/// The result of generating for several prompts at once, in the layout transformers' generate()
/// returns for a left-padded batch: every row is [pad … pad, prompt, new tokens, pad …], all
/// <see cref="Width"/> wide, with an attention mask that is 0 on the left padding. Row b·R + r is
/// return sequence r of prompt b (R = num_return_sequences).
/// </summary>
public sealed record BatchGenerationResult(IReadOnlyList<GenerationResult> PerPrompt, int[][] Sequences,
    int[][] AttentionMask)
{
    public int Width => Sequences.Length == 0 ? 0 : Sequences[0].Length;

    /// <summary>Cancelled before the end: the rows hold what was generated until then.</summary>
    public bool Stopped => PerPrompt.Any(r => r.Stopped);
}
