namespace ScratchGpt.Decoding.Strategies;

/// <summary>
/// The finished hypotheses of a beam search (capacity num_beams), kept as transformers'
/// BeamHypotheses does. A hypothesis is scored by its summed log-probability over its generated
/// length to the power length_penalty (only generated tokens count; an ending EOS counts). It enters if
/// the list is not full or it beats the worst stored score; an overflow drops the worst.
/// </summary>
public sealed class BeamHypotheses(int numBeams, double lengthPenalty, EarlyStopping earlyStopping, int maxLength)
{
    private readonly List<(double Score, int[] Tokens)> _beams = [];

    public double WorstScore { get; private set; } = 1e9;
    public int Count => _beams.Count;

    public void Add(int[] tokens, float sumLogProbs, int generatedLength)
    {
        double score = sumLogProbs / Math.Pow(generatedLength, lengthPenalty);
        if (_beams.Count < numBeams || score > WorstScore)
        {
            _beams.Add((score, tokens));
            if (_beams.Count > numBeams)
            {
                // Sort (score, index) ascending as Python does, drop the worst, the next becomes the worst.
                var sorted = _beams.Select((b, i) => (b.Score, i)).OrderBy(t => t.Score).ThenBy(t => t.i).ToList();
                _beams.RemoveAt(sorted[0].i);
                WorstScore = sorted[1].Score;
            }
            else WorstScore = Math.Min(score, WorstScore);
        }
    }

    /// <summary>
    /// Whether no better hypothesis can come: with early_stopping True as soon as the list is full;
    /// otherwise when the worst stored score ≥ the best this step's candidates could still reach.
    /// </summary>
    public bool IsDone(float bestSumLogProbs, int currentLength, int promptLength)
    {
        if (_beams.Count < numBeams) return false;
        if (earlyStopping == EarlyStopping.True) return true;
        int length = earlyStopping == EarlyStopping.Never && lengthPenalty > 0 ? maxLength : currentLength;
        double highestAttainable = bestSumLogProbs / Math.Pow(length - promptLength, lengthPenalty);
        return WorstScore >= highestAttainable;
    }

    /// <summary>Hypotheses best first. Python's stable sort + pop() returns the later of two equal scores
    /// first.</summary>
    public IEnumerable<(double Score, int[] Tokens)> BestFirst() =>
        _beams.Select((b, i) => (b, i)).OrderByDescending(t => t.b.Score).ThenByDescending(t => t.i).Select(t => t.b);
}
