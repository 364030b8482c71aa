using System.Text.Json.Nodes;
using ScratchGpt.Decoding;

namespace ScratchGpt.Tests;

/// <summary>Several prompts at once: each row is what its prompt gives alone, laid out as a left-padded
/// batch.</summary>
[Collection("console")]
public class BatchTests
{
    private static readonly string[] Texts = ["Transformers are the", "ROMEO:",
        "To be, or not to be, that is the question:"];

    public static TheoryData<string> Configs => new() { "greedy", "beam", "sample", "sample-3" };

    private static GenerationConfig Config(string name) => name switch
    {
        "greedy" => new() { MaxNewTokens = 12, EosTokenId = 50256, PadTokenId = 50256 },
        "beam" =>
            new() { MaxNewTokens = 10, NumBeams = 3, NumReturnSequences = 2, EosTokenId = 50256, PadTokenId = 50256 },
        "sample" =>
            new() { MaxNewTokens = 10, DoSample = true, TopK = 20, Seed = 42, EosTokenId = 50256, PadTokenId = 50256 },
        _ => new() { MaxNewTokens = 8, DoSample = true, TopP = 0.9f, NumReturnSequences = 3, Seed = 5,
        EosTokenId = 50256, PadTokenId = 50256 },
    };

    [Theory]
    [MemberData(nameof(Configs))]
    public void Each_row_of_a_batch_is_what_its_prompt_gives_alone(string name)
    {
        var model = Fixtures.Load("tiny-gpt2");
        var config = Config(name);
        var prompts = Texts.Select(Fixtures.Tokenizer.Encode).ToList();
        var batch = new Generator(model).GenerateBatch(prompts, config);
        int longest = prompts.Max(p => p.Length);
        int R = config.NumReturnSequences;
        Assert.Equal(prompts.Count * R, batch.Sequences.Length);
        for (int b = 0; b < prompts.Count; b++)
        {
            var alone = new Generator(model).Generate(prompts[b], config);
            for (int r = 0; r < R; r++)
            {
                int[] row = batch.Sequences[b * R + r], mask = batch.AttentionMask[b * R + r];
                int left = longest - prompts[b].Length;
                Assert.All(row[..left], t => Assert.Equal(50256, t));                     // left padding
                Assert.All(mask[..left], m => Assert.Equal(0, m));
                Assert.All(mask[left..], m => Assert.Equal(1, m));
                Assert.Equal(prompts[b], row[left..longest]);
                int[] mine = alone.Sequences[r].NewIds;
                Assert.Equal(mine, row[longest..(longest + mine.Length)]);
                // right padding after it finished
                Assert.All(row[(longest + mine.Length)..], t => Assert.Equal(50256, t));
            }
        }
    }

    /// <summary>Delegates to the model and counts the batched steps.</summary>
    private sealed class CountingModel(ILanguageModel inner) : ILanguageModel
    {
        public List<int> BatchSizes { get; } = [];
        public int VocabSize => inner.VocabSize;
        public int MaxPositions => inner.MaxPositions;
        public ILanguageModelState CreateState(int capacity) => inner.CreateState(capacity);
        public void AppendEach(IReadOnlyList<ILanguageModelState> states, ReadOnlySpan<int> ids, Span<float> nextLogits)
        {
            BatchSizes.Add(states.Count);
            inner.AppendEach(states, ids, nextLogits);
        }
    }

    [Fact]
    public void Prompts_without_beams_decode_in_lockstep_and_rows_drop_out_when_they_finish()
    {
        var counting = new CountingModel(Fixtures.Load("tiny-gpt2"));
        var prompts = Texts.Select(Fixtures.Tokenizer.Encode).ToList();
        // max_length (not max_new_tokens) ends the prompts at different steps: the longest prompt finishes first.
        var config = new GenerationConfig
        {
            MaxLength = prompts.Max(p => p.Length) + 3,
            EosTokenId = 50256,
            PadTokenId = 50256,
        };
        var batch = new Generator(counting).GenerateBatch(prompts, config);
        int[] newTokens = batch.PerPrompt.Select(r => r.Sequences[0].NewIds.Length).ToArray();
        Assert.Equal(prompts.Select(p => config.MaxLength!.Value - p.Length).ToArray(), newTokens);
        // step s appends a token for every row that still needs one after it
        int[] expected = Enumerable.Range(1, newTokens.Max() - 1).Select(s => newTokens.Count(n => n > s)).ToArray();
        Assert.Equal(expected, counting.BatchSizes);
        Assert.Equal(prompts.Count, counting.BatchSizes[0]);
    }

    [Fact]
    public void Cli_takes_several_prompts_and_prints_the_padded_batch()
    {
        var (code, stdout, err) = CliTests.RunCli("generate", "--model", Fixtures.Model("tiny-gpt2"), "--device", "cpu",
            "--prompt", Texts[0], "--prompt", Texts[1], "--max-new-tokens", "20", "--json");
        Assert.True(code == 0, err);
        var j = JsonNode.Parse(stdout)!;
        var greedy = GenerationTests.Find("greedy_p1_20");
        Assert.Equal(Fixtures.Ints(greedy["sequences"]![0]), Fixtures.Ints(j["prompts"]![0]!["sequences"]![0]!["ids"]));
        var padded = j["padded_sequences"]!.AsArray();
        Assert.Equal(2, padded.Count);
        int p0 = Fixtures.Tokenizer.Encode(Texts[0]).Length, p1 = Fixtures.Tokenizer.Encode(Texts[1]).Length;
        Assert.Equal(Enumerable.Repeat(0, Math.Max(p0, p1) - p1),
            Fixtures.Ints(j["attention_mask"]![1])[..(Math.Max(p0, p1) - p1)]);
    }
}
