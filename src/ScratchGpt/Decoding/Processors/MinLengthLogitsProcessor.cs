namespace ScratchGpt.Decoding.Processors;

/// <summary>EOS is forbidden (−∞) while the sequence, prompt included, is shorter than min_length.</summary>
public sealed class MinLengthLogitsProcessor(int minLength, int eosTokenId) : ILogitsProcessor
{
    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        if (inputIds.Length < minLength) scores[eosTokenId] = float.NegativeInfinity;
    }
}
