namespace ScratchGpt.Decoding;

/// <summary>
/// Scores a finished row with one forward pass over it (no cache):
///     logp[j] = log_softmax(logits[j])[labels[j+1]]        (the probability of token j+1 given 0..j)
/// sequence_logprob sums logp[input_len ..] — the reference's off-by-one leaves out the first
/// generated token, and it is reproduced on purpose; SumLogprobAllGeneratedTokens sums from
/// input_len − 1 (all generated tokens), and PerTokenLogprob lists those terms. Sums are float32.
/// </summary>
public static class SequenceScorer
{
    public static SequenceLogProb Score(Func<int[], float[]> allLogits, int vocab, int[] labels, int inputLength)
    {
        if (inputLength < 1 || inputLength > labels.Length)
            throw new ArgumentException($"input length {inputLength} must be in 1..{labels.Length}");
        float[] logits = allLogits(labels);           // [T, V]
        int T = labels.Length;
        var logp = new float[T - 1];
        var row = new float[vocab];
        for (int j = 0; j < T - 1; j++)
        {
            TokenMath.LogSoftmax(logits.AsSpan(j * vocab, vocab), row);
            logp[j] = row[labels[j + 1]];
        }
        float reference = 0, all = 0;
        for (int j = inputLength; j < T - 1; j++) reference += logp[j];
        for (int j = inputLength - 1; j < T - 1; j++) all += logp[j];
        return new SequenceLogProb(reference, all, logp[(inputLength - 1)..]);
    }
}
