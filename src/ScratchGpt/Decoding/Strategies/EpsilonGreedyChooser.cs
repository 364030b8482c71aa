namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Epsilon-greedy: with probability ε the argmax, otherwise a draw from the full distribution (no warpers run
/// for it). ε = 1 is greedy, ε = 0 is pure sampling.
/// </summary>
public sealed class EpsilonGreedyChooser(double epsilon, TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<float> scores, Span<float> distribution)
    {
        TokenMath.Softmax(scores, distribution);
        return sampler.NextDouble() < epsilon ? TokenMath.Argmax(scores) : sampler.Sample(distribution);
    }
}
