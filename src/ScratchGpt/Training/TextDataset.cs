using ScratchGpt.Tokenization;
using ScratchGpt.Loading;

namespace ScratchGpt.Training;

/// <summary>
/// A text file as token blocks for causal-LM training. The file is tokenised once as one stream; the
/// last <c>evalFraction</c> of the tokens is held out for validation. Each block holds T + 1 tokens
/// with a stride of T, so its inputs are tokens [0, T) and its targets tokens [1, T + 1): every token
/// of the split is predicted exactly once.
/// </summary>
public sealed class TextDataset
{
    public int[] Train { get; }
    public int[] Validation { get; }
    public int BlockSize { get; }
    public string Source { get; }

    /// <summary>Where the tokenizer's files are (from <see cref="FromFile"/>): the trainer writes them beside the
    /// model.</summary>
    public string? TokenizerDirectory { get; init; }

    public TextDataset(int[] tokens, double evalFraction, int blockSize, string source)
    {
        if (evalFraction is < 0 or >= 1)
            throw new ArgumentException($"--eval-split must be in [0, 1), got {evalFraction}");
        if (blockSize < 1) throw new ArgumentException($"--block-size must be at least 1, got {blockSize}");
        int nVal = (int)Math.Round(tokens.Length * evalFraction);
        Train = tokens[..^nVal];
        Validation = tokens[^nVal..];
        BlockSize = blockSize;
        Source = source;
        if (TrainBlocks < 1)
            throw new ArgumentException($"{source}: {Train.Length} training tokens are fewer than one block of " +
                $"--block-size {blockSize} + 1");
    }

    public static TextDataset FromFile(string path, Gpt2Tokenizer tokenizer, double evalFraction, int blockSize)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: training text not found");
        string text = File.ReadAllText(path);
        if (text.Length == 0) throw new ArgumentException($"{path}: the file is empty");
        return new TextDataset(tokenizer.Encode(text), evalFraction, blockSize, path)
        {
            TokenizerDirectory = tokenizer.SourceDirectory,
        };
    }

    public int TrainBlocks => (Train.Length - 1) / BlockSize;
    public int ValidationBlocks => Validation.Length < 2 ? 0 : (Validation.Length - 2) / BlockSize + 1;

    /// <summary>The order of training blocks for an epoch: a seeded shuffle, the same in every process, so a
    /// resumed run sees the same order. (HashCode.Combine would not do: it is randomised per process.)</summary>
    public int[] EpochOrder(int seed, int epoch)
    {
        var order = Enumerable.Range(0, TrainBlocks).ToArray();
        new Random(MixSeed(seed, epoch)).Shuffle(order);
        return order;
    }

    /// <summary>A fixed mix of seed parts into one seed (the splitmix64 finaliser).</summary>
    public static int MixSeed(params long[] parts)
    {
        ulong h = 0x9E3779B97F4A7C15;
        foreach (long p in parts)
        {
            h ^= (ulong)p + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2);
            h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9;
            h = (h ^ (h >> 27)) * 0x94D049BB133111EB;
            h ^= h >> 31;
        }
        return (int)(h & 0x7FFFFFFF);
    }

    /// <summary>Fills ids/targets [count, T] from training blocks; <paramref name="blocks"/> are block
    /// indices.</summary>
    public void FillTrain(ReadOnlySpan<int> blocks, int[] ids, int[] targets)
    {
        int T = BlockSize;
        for (int b = 0; b < blocks.Length; b++)
        {
            int start = blocks[b] * T;
            Train.AsSpan(start, T).CopyTo(ids.AsSpan(b * T, T));
            Train.AsSpan(start + 1, T).CopyTo(targets.AsSpan(b * T, T));
        }
    }

    /// <summary>Validation block <paramref name="block"/> into row <paramref name="row"/>; the last block may be
    /// short, its missing positions padded with token 0 and target −1 (ignored). Returns the number of
    /// targets.</summary>
    public int FillValidation(int block, int row, int[] ids, int[] targets)
    {
        int T = BlockSize, start = block * T;
        int n = Math.Min(T, Validation.Length - 1 - start);
        for (int t = 0; t < T; t++)
        {
            ids[row * T + t] = t < n ? Validation[start + t] : 0;
            targets[row * T + t] = t < n ? Validation[start + t + 1] : -1;
        }
        return n;
    }

    /// <summary>
    /// The unigram baseline: the cross-entropy of the validation tokens under their own unigram
    /// distribution, i.e. its entropy −Σ p log p. No model that ignores context can do better on this
    /// text, so a language model's validation loss should be well below it.
    /// </summary>
    public double UnigramEntropy()
    {
        var counts = new Dictionary<int, int>();
        foreach (int t in Validation.AsSpan(1)) counts[t] = counts.GetValueOrDefault(t) + 1;
        double n = Validation.Length - 1, h = 0;
        foreach (int c in counts.Values) h -= c / n * Math.Log(c / n);
        return h;
    }

    /// <summary>The usual unigram language model: token frequencies of the training split with add-one
    /// (Laplace) smoothing over the vocabulary, scored on the validation split (nats per token).</summary>
    public double UnigramCrossEntropy(int vocabSize)
    {
        var counts = new int[vocabSize];
        foreach (int t in Train) counts[t]++;
        double denominator = Train.Length + (double)vocabSize, total = 0;
        foreach (int t in Validation.AsSpan(1)) total -= Math.Log((counts[t] + 1) / denominator);
        return total / (Validation.Length - 1);
    }
}
