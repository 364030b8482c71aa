namespace ScratchGpt.Decoding.Strategies;

/// <summary>Multinomial sampling: softmax of the warped scores, one draw.</summary>
public sealed class MultinomialChooser(TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<float> scores, Span<float> distribution)
    {
        TokenMath.Softmax(scores, distribution);
        return sampler.Sample(distribution);
    }
}
