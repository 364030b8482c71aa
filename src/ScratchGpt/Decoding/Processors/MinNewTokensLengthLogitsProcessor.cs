namespace ScratchGpt.Decoding.Processors;

/// <summary>EOS is forbidden (−∞) until min_new_tokens tokens have been generated after the prompt.</summary>
public sealed class MinNewTokensLengthLogitsProcessor(int promptLength, int minNewTokens, int eosTokenId)
    : ILogitsProcessor
{
    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        if (inputIds.Length - promptLength < minNewTokens) scores[eosTokenId] = float.NegativeInfinity;
    }
}
