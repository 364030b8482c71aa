namespace ScratchGpt.Decoding.Strategies;

/// <summary>Greedy search: the argmax of the scores (lowest id on ties).</summary>
public sealed class GreedyChooser : ITokenChooser
{
    public int Choose(ReadOnlySpan<float> scores, Span<float> distribution)
    {
        TokenMath.Softmax(scores, distribution);
        return TokenMath.Argmax(scores);
    }
}
