using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>
/// The SIMD CPU backend picks its kernels by what the CPU has: AVX-512, AVX-VNNI, AVX2 + FMA, 128-bit vectors or none.
/// A test machine has one of these; the runtime turns the others off from the environment, so every level runs here,
/// as the real CLI on an older CPU would: the kernel table against the reference backend, and the fixtures' first
/// greedy case token for token as transformers wrote it (float32), with the Q8_0 and Q4_0 tokens after a prompt long
/// enough for the prefill product the same as the machine's own level gives.
/// </summary>
[Collection("cli-process")]
public class InstructionSetTests
{
    /// <summary>The environment of each level and what the backend's device name must then say (true: contains,
    /// false: does not).</summary>
    public static TheoryData<string, string, bool> Levels => new()
    {
        { "", "cores", true },                                                 // whatever this CPU has
        { "DOTNET_EnableAVX512=0", "AVX-512", false },                          // Alder Lake, Raptor Lake
        { "DOTNET_EnableAVX512=0 DOTNET_EnableAVXVNNI=0", "AVX-VNNI", false },  // Zen 3, Skylake: AVX2 + FMA
        { "DOTNET_EnableAVX2=0", "128-bit SIMD", true },                        // x86-64-v2
        { "DOTNET_EnableHWIntrinsic=0", "no SIMD", true },                      // the scalar fallbacks
    };

    private static Dictionary<string, string> Environment(string settings) =>
        settings.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(s => s.Split('='))
            .ToDictionary(kv => kv[0], kv => kv[1]);

    private static int[] Greedy(Dictionary<string, string> env, string prompt, int tokens, params string[] more)
    {
        var (code, stdout, stderr) = CliProcess.Run(
            ["generate", "--model", Fixtures.Model("tiny-gpt2"), "--tokenizer", Fixtures.TokenizerDir, "--device",
                "cpu", "--prompt", prompt, "--max-new-tokens", tokens.ToString(), "--json", .. more], env);
        Assert.True(code == 0, stderr);
        return Fixtures.Ints(JsonNode.Parse(stdout)!["prompts"]![0]!["sequences"]![0]!["new_ids"]);
    }

    /// <summary>A prompt of more than 16 tokens, so that its forward is a prefill product (Q8_0 / Q4_0: the
    /// integer GEMM with vpdpbusd, with vpmaddubsw or the widened float GEMM, by level), then decode steps.</summary>
    private const string LongPrompt =
        "ROMEO: But soft, what light through yonder window breaks? It is the east, and Juliet is the sun.";

    /// <summary>The machine's own level's Q8_0 and Q4_0 tokens, run once for every level to be compared with.</summary>
    private static readonly Lazy<Dictionary<string, int[]>> FullLevel = new(() =>
        new[] { "q8_0", "q4_0" }.ToDictionary(q => q, q => Greedy([], LongPrompt, 12, "--quantize", q)));

    private static JsonNode FirstGreedyCase => Fixtures.Json("generation.json")["cases"]!.AsArray()
        .First(c => c!["group"]!.GetValue<string>() == "greedy" && c["model"]!.GetValue<string>() == "tiny-gpt2")!;

    private static string Prompt => FirstGreedyCase["prompt"]!.GetValue<string>();

    [Theory]
    [MemberData(nameof(Levels))]
    public void Every_instruction_set_level_passes_the_kernel_table_and_the_fixtures(string settings, string name,
        bool named)
    {
        var env = Environment(settings);
        var (code, stdout, stderr) = CliProcess.Run(["kernels", "test", "--device", "cpu"], env);
        Assert.True(code == 0, stdout + stderr);
        string device = stderr.Split('\n')[0];
        Assert.StartsWith("Device: cpu — ", device);
        Assert.True(device.Contains(name) == named, $"{settings}: {device}");
        Assert.Matches(@"\d+ cases on cpu: all within 1E-004 relative", stdout);

        int[] expected = Fixtures.Ints(FirstGreedyCase["new_tokens"]![0]);
        Assert.Equal(expected, Greedy(env, Prompt, expected.Length));

        // the integer sums of Q8_0 and Q4_0 are exact at every level; their float sums run in another order
        foreach (var (q, tokens) in FullLevel.Value)
            Assert.Equal(tokens, Greedy(env, LongPrompt, 12, "--quantize", q));
    }
}
