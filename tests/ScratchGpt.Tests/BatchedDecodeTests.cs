using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Tests;

/// <summary>Gpt2Model.AppendEach: one decode step for several sequences, the weights read once.</summary>
public class BatchedDecodeTests
{
    private static readonly string[] Prompts =
        ["ROMEO:", "The quick brown fox jumped over", "It is the east, and Juliet", "En un lugar de la Mancha", "A",
        "What light"];

    /// <summary>Sessions holding prompts of different lengths (so every row has its own position), then a few batched
    /// steps; returns each step's logits, [step][b·V ..].</summary>
    internal static List<float[]> Batched(Gpt2Model model, int count, int steps)
    {
        var sessions = Enumerable.Range(0, count).Select(_ => (ILanguageModelState)model.CreateSession(64)).ToList();
        try
        {
            var scratch = new float[model.VocabSize];
            for (int b = 0; b < count; b++)
                sessions[b].Append(Fixtures.Tokenizer.Encode(Prompts[b % Prompts.Length]), scratch);
            var result = new List<float[]>();
            for (int step = 0; step < steps; step++)
            {
                int[] ids = Enumerable.Range(0, count).Select(b => (b * 7919 + step * 104729) % model.VocabSize)
                    .ToArray();
                var logits = new float[count * model.VocabSize];
                model.AppendEach(sessions, ids, logits);
                result.Add(logits);
            }
            return result;
        }
        finally { foreach (var s in sessions) s.Dispose(); }
    }

    /// <summary>The same steps, one sequence at a time through Append.</summary>
    internal static List<float[]> OneByOne(Gpt2Model model, int count, int steps)
    {
        var result = Enumerable.Range(0, steps).Select(_ => new float[count * model.VocabSize]).ToList();
        for (int b = 0; b < count; b++)
        {
            using var s = model.CreateSession(64);
            var scratch = new float[model.VocabSize];
            s.Append(Fixtures.Tokenizer.Encode(Prompts[b % Prompts.Length]), scratch);
            for (int step = 0; step < steps; step++)
                s.Append([(b * 7919 + step * 104729) % model.VocabSize],
                    result[step].AsSpan(b * model.VocabSize, model.VocabSize));
        }
        return result;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(11)]   // more than MaxDecodeBatch: two passes
    public void A_batched_step_gives_each_sequence_exactly_its_own_logits_on_the_cpu(int count)
    {
        var model = Fixtures.Load("tiny-gpt2");
        var expected = OneByOne(model, count, 3);
        var actual = Batched(model, count, 3);
        for (int step = 0; step < 3; step++) Assert.Equal(expected[step], actual[step]);
    }

    [Theory]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.Q8_0)]
    public void A_batched_step_with_float16_or_q8_0_weights_is_bit_for_bit_too(WeightPrecision precision)
    {
        using var model = Gpt2Model.Load(Fixtures.Model("tiny-gpt2"),
            new ModelLoadOptions { TokenizerDirectory = Fixtures.TokenizerDir, Precision = precision });
        Assert.Equal(precision, model.Precision);
        var expected = OneByOne(model, 5, 2);
        var actual = Batched(model, 5, 2);
        for (int step = 0; step < 2; step++) Assert.Equal(expected[step], actual[step]);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(15)]
    [InlineData(16)]
    [InlineData(33)]
    [InlineData(100)]
    [InlineData(769)]
    public void The_several_row_dot_products_give_the_single_row_bits(int n)
    {
        var rng = new Random(n);
        float[] w = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] x = Enumerable.Range(0, 4 * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        Backends.Cpu.CpuKernels.DotRows4(w, x, out float s0, out float s1, out float s2, out float s3);
        Assert.Equal([Dot(0), Dot(1), Dot(2), Dot(3)], new[] { s0, s1, s2, s3 });
        float Dot(int r) => Backends.Cpu.CpuKernels.Dot(w, x.AsSpan(r * n, n));

        Half[] wh = w.Select(v => (Half)v).ToArray();
        float[] paired = new float[2 * n];
        for (int r = 0; r < 2; r++) Backends.Cpu.CpuKernels.PairForHalfDot(x.AsSpan(r * n, n), paired.AsSpan(r * n, n));
        Backends.Cpu.CpuKernels.DotHalfPairedRows2(wh, paired, out float h0, out float h1);
        Assert.Equal(Backends.Cpu.CpuKernels.DotHalfPaired(wh, paired.AsSpan(0, n)), h0);
        Assert.Equal(Backends.Cpu.CpuKernels.DotHalfPaired(wh, paired.AsSpan(n, n)), h1);
    }

    [Theory]
    [InlineData(7, 5, 3, 64)]
    [InlineData(9, 0, 2, 20)]
    public void Prompt_attention_gives_each_row_the_bits_of_one_row_at_a_time(int rows, int past, int heads,
        int headDim)
    {
        // Prompts take the four-rows-at-a-time path (DotRows4); decoding, one row at a time (Dot).
        var be = new Backends.Cpu.CpuBackend();
        var rng = new Random(rows);
        int E = heads * headDim, capacity = past + rows + 3;
        float[] R(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] qkv = R(rows * 3 * E), k0 = R(capacity * E), v0 = R(capacity * E);
        using var q = be.Upload(qkv); using var k = be.Upload(k0); using var v = be.Upload(v0);
        using var y = be.Allocate(rows * E); using var probs = be.Allocate(heads * rows * (past + rows));
        be.Attention(q, k, v, y, probs, rows, past, heads, headDim);

        using var k1 = be.Upload(k0); using var v1 = be.Upload(v0);
        using var q1 = be.Allocate(3 * E);
        using var y1 = be.Allocate(E);
        using var p1 = be.Allocate(heads * (past + rows));
        var yAll = new float[rows * E]; be.Download(y, 0, yAll);
        var pAll = new float[heads * rows * (past + rows)]; be.Download(probs, 0, pAll);
        for (int r = 0; r < rows; r++)
        {
            be.Copy(q, r * 3 * E, q1, 0, 3 * E);
            be.Attention(q1, k1, v1, y1, p1, 1, past + r, heads, headDim);
            var yRow = new float[E]; be.Download(y1, 0, yRow);
            Assert.Equal(yAll.AsSpan(r * E, E).ToArray(), yRow);
            var pRow = new float[heads * (past + r + 1)]; be.Download(p1, 0, pRow);
            for (int h = 0; h < heads; h++)
                Assert.Equal(pAll.AsSpan((h * rows + r) * (past + rows), past + r + 1).ToArray(),
                    pRow.AsSpan(h * (past + r + 1), past + r + 1).ToArray());
        }
    }

    [Fact]
    public void Bad_batches_are_refused_before_any_work()
    {
        var model = Fixtures.Load("tiny-gpt2");
        using var a = model.CreateSession(8);
        using var full = model.CreateSession(1);
        var logits = new float[2 * model.VocabSize];
        full.Append([464], logits.AsSpan(0, model.VocabSize));

        Assert.Contains("same session",
            Assert.Throws<ArgumentException>(() => model.AppendEach([a, a], [1, 2], logits)).Message);
        Assert.Contains("2 token ids for 1",
            Assert.Throws<ArgumentException>(() => model.AppendEach([a], [1, 2], logits)).Message);
        Assert.Contains("full",
            Assert.Throws<ArgumentException>(() => model.AppendEach([a, full], [1, 2], logits)).Message);
        Assert.Contains("outside the vocabulary",
            Assert.Throws<ArgumentException>(() => model.AppendEach([a], [model.VocabSize], logits)).Message);
        var closed = model.CreateSession(8);
        closed.Dispose();
        Assert.Throws<ObjectDisposedException>(() => model.AppendEach([a, closed], [1, 2], logits));
        Assert.Equal(0, a.Length);   // nothing was appended to the good session either
    }
}
