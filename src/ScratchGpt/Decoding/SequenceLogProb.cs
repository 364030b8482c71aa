namespace ScratchGpt.Decoding;

/// <summary>The log-probabilities of a sequence's tokens, as the fixtures' sequence_logprob defines them.</summary>
public sealed record SequenceLogProb(float SequenceLogprob, float SumLogprobAllGeneratedTokens,
    float[] PerTokenLogprob);
