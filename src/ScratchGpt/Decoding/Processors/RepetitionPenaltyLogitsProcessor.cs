namespace ScratchGpt.Decoding.Processors;

/// <summary>
/// Makes every token already in the sequence less likely (CTRL's penalty): a positive score is
/// divided by the penalty, a negative one multiplied, so both move down. Each distinct id counts once.
/// </summary>
public sealed class RepetitionPenaltyLogitsProcessor(float penalty) : ILogitsProcessor
{
    public float Penalty { get; } = penalty;

    public void Process(ReadOnlySpan<int> inputIds, Span<float> scores)
    {
        var seen = new HashSet<int>();
        foreach (int id in inputIds)
        {
            if (!seen.Add(id)) continue;
            float s = scores[id];
            scores[id] = s < 0 ? s * Penalty : s / Penalty;
        }
    }
}
