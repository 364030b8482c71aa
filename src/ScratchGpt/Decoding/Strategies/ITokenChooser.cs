namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Picks the next token from the processed scores [vocab] of one sequence (num_beams = 1).
/// <paramref name="distribution"/> receives the probabilities the choice was made from, for tracing.
/// </summary>
public interface ITokenChooser
{
    int Choose(ReadOnlySpan<int> ids, Span<float> scores, Span<float> distribution);

    public static ITokenChooser For(GenerationConfig c, Processors.LogitsProcessorList list, TokenSampler sampler) =>
        c.Epsilon is double eps ? new EpsilonGreedyChooser(eps, sampler)
        : c.Unweighted ? new UnweightedChooser(list, sampler)
        : c.DoSample ? new MultinomialChooser(list, sampler)
        : new GreedyChooser();
}

/// <summary>Greedy search: the argmax of the processed scores (lowest id on ties).</summary>
public sealed class GreedyChooser : ITokenChooser
{
    public int Choose(ReadOnlySpan<int> ids, Span<float> scores, Span<float> distribution)
    {
        TokenMath.Softmax(scores, distribution);
        return TokenMath.Argmax(scores);
    }
}

/// <summary>Multinomial sampling: warpers (temperature → top-k → top-p), softmax, one draw.</summary>
public sealed class MultinomialChooser(Processors.LogitsProcessorList list, TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<int> ids, Span<float> scores, Span<float> distribution)
    {
        list.ApplyWarpers(ids, scores);
        TokenMath.Softmax(scores, distribution);
        return sampler.Sample(distribution);
    }
}

/// <summary>
/// Epsilon-greedy: with probability ε the argmax, otherwise a draw from the full (unwarped)
/// distribution. ε = 1 is greedy, ε = 0 is pure sampling.
/// </summary>
public sealed class EpsilonGreedyChooser(double epsilon, TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<int> ids, Span<float> scores, Span<float> distribution)
    {
        TokenMath.Softmax(scores, distribution);
        return sampler.NextDouble() < epsilon ? TokenMath.Argmax(scores) : sampler.Sample(distribution);
    }
}

/// <summary>Teaching aid: a uniform choice among the tokens the warpers leave, to show why the weights matter.</summary>
public sealed class UnweightedChooser(Processors.LogitsProcessorList list, TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<int> ids, Span<float> scores, Span<float> distribution)
    {
        list.ApplyWarpers(ids, scores);
        int kept = 0;
        foreach (float s in scores) if (!float.IsNegativeInfinity(s)) kept++;
        for (int i = 0; i < scores.Length; i++) distribution[i] = float.IsNegativeInfinity(scores[i]) ? 0 : 1f / kept;
        return sampler.Uniform(scores);
    }
}
