namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// One transformation of the next-token scores [vocab], given the sequence so far (prompt included).
/// Processors run first (repetition penalty, no-repeat n-gram, min length), then, when sampling, the
/// warpers (temperature, top-k, top-p): see <see cref="LogitsProcessorList"/>.
/// </summary>
public interface ILogitsProcessor
{
    void Process(ReadOnlySpan<int> inputIds, Span<float> scores);
}
