using System.Diagnostics;
using ScratchGpt.Decoding;
using Xunit.Abstractions;

namespace ScratchGpt.Tests;

/// <summary>Concurrency, soak, hostile prompt text and prompt-length handling (the README's Reliability
/// table).</summary>
[Collection("console")]
public class ReliabilityTests(ITestOutputHelper output)
{
    private static int Scale => Fixtures.LongRunScale;

    private static GenerationConfig[] Configs =>
    [
        new() { MaxNewTokens = 12, EosTokenId = 50256 },
        new() { MaxNewTokens = 10, NumBeams = 3, EosTokenId = 50256, PadTokenId = 50256 },
        new() { MaxNewTokens = 10, DoSample = true, TopP = 0.9f, Seed = 7, EosTokenId = 50256 },
        new() { MaxNewTokens = 10, NoRepeatNgramSize = 2, EosTokenId = 50256 },
    ];

    [Fact]
    public void One_model_shared_by_many_threads_gives_the_sequential_results()
    {
        var model = Fixtures.Load("tiny-gpt2");
        var prompts = new[] { "ROMEO:", "To be, or not", "The king", "Good morrow", "What light", "JULIET:\nO" }
            .Select(Fixtures.Tokenizer.Encode).ToArray();
        var jobs = (from p in prompts from c in Configs select (p, c)).ToArray();
        var expected = jobs.Select(j => new Generator(model).Generate(j.p, j.c).Sequences.Select(s => s.Ids).ToArray())
            .ToArray();
        var actual = new int[jobs.Length * 4][][];
        Parallel.For(0, actual.Length, new ParallelOptions { MaxDegreeOfParallelism = 16 },
            i => actual[i] = new Generator(model).Generate(jobs[i % jobs.Length].p, jobs[i % jobs.Length].c)
            .Sequences.Select(s => s.Ids).ToArray());
        for (int i = 0; i < actual.Length; i++) Assert.Equal(expected[i % jobs.Length], actual[i]);
        output.WriteLine($"concurrency: {actual.Length} generations on 16 threads, all equal to the " +
            "sequential results");
    }

    [Fact]
    public void Soak_of_thousands_of_generations_does_not_grow_memory()
    {
        var model = Fixtures.Load("tiny-gpt2");
        int[] prompt = Fixtures.Tokenizer.Encode("ROMEO:");
        var config = new GenerationConfig { MaxNewTokens = 4, EosTokenId = 50256 };
        void Run(int n) { for (int i = 0; i < n; i++) new Generator(model).Generate(prompt, config); }
        Run(200);   // warm-up: JIT, pools, caches
        long managed0 = Settle(), native0 = Process.GetCurrentProcess().WorkingSet64;
        int count = 2000 * Scale;
        var clock = Stopwatch.StartNew();
        Run(count);
        long managed1 = Settle();
        Process.GetCurrentProcess().Refresh();
        long native1 = Process.GetCurrentProcess().WorkingSet64;
        output.WriteLine($"soak: {count} generations in {clock.Elapsed.TotalSeconds:F1} s; managed heap " +
            $"{managed0 / 1e6:F1} → {managed1 / 1e6:F1} MB; working set {native0 / 1e6:F0} → {native1 / 1e6:F0} MB");
        Assert.True(managed1 - managed0 < 8_000_000, $"managed heap grew by {(managed1 - managed0) / 1e6:F1} MB");
        Assert.True(native1 - native0 < 64_000_000, $"working set grew by {(native1 - native0) / 1e6:F1} MB");
    }

    private static long Settle()
    {
        for (int i = 0; i < 3; i++) { GC.Collect(); GC.WaitForPendingFinalizers(); }
        return GC.GetTotalMemory(true);
    }

    [Theory]
    [InlineData("lone high surrogate \uD800 here")]
    [InlineData("lone low surrogate \uDC00 here")]
    [InlineData("NUL \0 and controls \u0001\u0007\u001b[31m\u007f")]
    [InlineData("\r\n\t \u00a0\u2028\u2029\ufeff")]
    [InlineData("emoji 👍🏽 and combining é́")]
    public void Hostile_text_tokenizes_and_round_trips_where_the_bytes_allow(string text)
    {
        var tok = Fixtures.Tokenizer;
        string decoded = tok.Decode(tok.Encode(text), cleanUpSpaces: false);
        // Lone surrogates are not encodable in UTF-8: they become U+FFFD, as Python's errors="replace" would do.
        string expected = new string(
            text.Select((c, i) => char.IsSurrogate(c)
            && !(char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            && !(char.IsLowSurrogate(c) && i > 0 && char.IsHighSurrogate(text[i - 1])) ? '\uFFFD' : c).ToArray());
        Assert.Equal(expected, decoded);
    }

    [Fact]
    public void One_megabyte_line_tokenizes_and_round_trips()
    {
        var rng = new Random(3);
        const string alphabet = "abcdefghij klmnop,.;:!?ñé日本";
        string text = new(Enumerable.Range(0, 1 << 20).Select(_ => alphabet[rng.Next(alphabet.Length)]).ToArray());
        var tok = Fixtures.Tokenizer;
        int[] ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids, cleanUpSpaces: false));
        var noSpaces = new string('x', 1 << 20);   // one 1 MB "word": the BPE must not go quadratic
        Assert.Equal(noSpaces, tok.Decode(tok.Encode(noSpaces), cleanUpSpaces: false));
    }

    [Fact]
    public void Long_prompt_is_refused_unless_truncate_left_is_asked_for()
    {
        string prompt = string.Concat(
            Enumerable.Repeat("ROMEO: But soft, what light through yonder window breaks? ", 20));
        int n = Fixtures.Tokenizer.Encode(prompt).Length;
        Assert.True(n > 240);
        string[] args = ["generate", "--model", Fixtures.Model("tiny-gpt2"), "--device", "cpu", "--prompt", prompt,
            "--max-new-tokens", "30", "--json"];
        var (code, _, err) = CliTests.RunCli(args);
        Assert.Equal(1, code);
        Assert.Contains("n_positions (256)", err);
        (code, string stdout, err) = CliTests.RunCli([.. args, "--truncate", "left"]);
        Assert.True(code == 0, err);
        Assert.Contains($"dropped the first {n + 30 - 256} of {n} prompt tokens", err);
        var j = System.Text.Json.Nodes.JsonNode.Parse(stdout)!;
        Assert.Equal(256, j["prompts"]![0]!["sequences"]![0]!["ids"]!.AsArray().Count);
    }

    [Fact]
    public void Empty_prompt_starts_from_bos_and_says_so()
    {
        var (code, stdout, err) = CliTests.RunCli("generate", "--model", Fixtures.Model("tiny-gpt2"), "--device", "cpu",
            "--prompt", "", "--max-new-tokens", "5", "--json");
        Assert.True(code == 0, err);
        Assert.Contains("starting from the BOS token (50256)", err);
        Assert.Equal(50256,
            System.Text.Json.Nodes.JsonNode.Parse(
            stdout)!["prompts"]![0]!["sequences"]![0]!["ids"]![0]!.GetValue<int>());
    }
}
