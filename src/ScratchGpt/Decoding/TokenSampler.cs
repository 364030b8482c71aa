namespace ScratchGpt.Decoding;

/// <summary>
/// Draws token ids from a distribution. The generator is System.Random: seeded with --seed it is
/// .NET's subtractive (Knuth) generator, which gives the same stream on every platform and .NET
/// version, so a seeded run is reproducible. (PyTorch's stream cannot be matched; the fixtures check
/// the distributions instead.)
/// </summary>
public sealed class TokenSampler(int? seed)
{
    private readonly Random _random = seed is int s ? new Random(s) : new Random();

    public double NextDouble() => _random.NextDouble();

    /// <summary>One draw from probabilities that sum to 1 (zero-probability tokens are never drawn).</summary>
    public int Sample(ReadOnlySpan<float> probs)
    {
        double u = _random.NextDouble(), total = 0;
        foreach (float p in probs) total += p;
        u *= total;
        double acc = 0;
        int last = -1;
        for (int i = 0; i < probs.Length; i++)
        {
            if (probs[i] <= 0) continue;
            acc += probs[i];
            last = i;
            if (u < acc) return i;
        }
        return last;   // round-off left u just past the total
    }

    /// <summary><paramref name="count"/> distinct draws without replacement (as
    /// torch.multinomial(replacement=False)).</summary>
    public int[] SampleWithoutReplacement(ReadOnlySpan<float> probs, int count)
    {
        var p = probs.ToArray();
        var picks = new int[count];
        for (int k = 0; k < count; k++)
        {
            int i = Sample(p);
            if (i < 0)
                throw new InvalidOperationException($"cannot draw {count} distinct tokens: only {k} have non-zero " +
                    "probability");
            picks[k] = i;
            p[i] = 0;
        }
        return picks;
    }

    /// <summary>A uniform choice among the tokens whose score is finite.</summary>
    public int Uniform(ReadOnlySpan<float> scores)
    {
        int n = 0;
        foreach (float s in scores) if (!float.IsNegativeInfinity(s)) n++;
        int target = _random.Next(n);
        for (int i = 0; i < scores.Length; i++)
            if (!float.IsNegativeInfinity(scores[i]) && target-- == 0) return i;
        return -1;
    }
}
