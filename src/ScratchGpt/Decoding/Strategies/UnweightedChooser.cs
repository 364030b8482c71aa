namespace ScratchGpt.Decoding.Strategies;

/// <summary>Teaching aid: a uniform choice among the tokens the warpers leave, to show why the weights
/// matter.</summary>
public sealed class UnweightedChooser(TokenSampler sampler) : ITokenChooser
{
    public int Choose(ReadOnlySpan<float> scores, Span<float> distribution)
    {
        int kept = 0;
        foreach (float s in scores) if (!float.IsNegativeInfinity(s)) kept++;
        for (int i = 0; i < scores.Length; i++) distribution[i] = float.IsNegativeInfinity(scores[i]) ? 0 : 1f / kept;
        return sampler.Uniform(scores);
    }
}
