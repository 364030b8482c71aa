namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// Picks the next token of one sequence (num_beams = 1) from its final scores [vocab]: the logits after the
/// processors and, when sampling, the warpers (<see cref="SequenceStepper"/> applies both). A chooser only
/// chooses. <paramref name="distribution"/> receives the probabilities the choice was made from, for tracing.
/// </summary>
public interface ITokenChooser
{
    int Choose(ReadOnlySpan<float> scores, Span<float> distribution);

    public static ITokenChooser For(GenerationConfig c, TokenSampler sampler) =>
        c.Epsilon is double eps ? new EpsilonGreedyChooser(eps, sampler)
        : c.Unweighted ? new UnweightedChooser(sampler)
        : c.DoSample ? new MultinomialChooser(sampler)
        : new GreedyChooser();
}
