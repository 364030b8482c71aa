using ScratchGpt.Tokenization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Tests;

/// <summary>Finds ../shared/fixtures beside the repository and loads its models once per test run.</summary>
public static class Fixtures
{
    public static string RepoRoot { get; } = FindRepoRoot();

    public static string Dir { get; } =
        Environment.GetEnvironmentVariable("SCRATCHGPT_FIXTURES")
        ?? Path.GetFullPath(Path.Combine(RepoRoot, "..", "shared", "fixtures"));

    /// <summary>10 when SCRATCHGPT_LONG=1 (.ci/run --long): the fuzz and soak tests run ten times as many
    /// cases.</summary>
    public static int LongRunScale { get; } = Environment.GetEnvironmentVariable("SCRATCHGPT_LONG") == "1" ? 10 : 1;

    public static string Model(string name) => Path.Combine(Dir, "models", name);
    public static string Case(string name) => Path.Combine(Dir, "cases", name);
    public static string TokenizerDir => Path.Combine(Dir, "tokenizer");

    public static JsonNode Json(string caseFile) => JsonNode.Parse(File.ReadAllText(Case(caseFile)))!;

    private static readonly Dictionary<string, Gpt2Model> Models = new();
    private static readonly Lock ModelsLock = new();

    /// <summary>A shared, loaded fixture model on the CPU (models are thread-safe; sessions are per call).</summary>
    public static Gpt2Model Load(string name, string device = "cpu")
    {
        lock (ModelsLock)
        {
            string key = name + "@" + device;
            if (!Models.TryGetValue(key, out var m))
                Models[key] = m = Gpt2Model.Load(Model(name),
                    new ModelLoadOptions { Device = device, TokenizerDirectory = TokenizerDir });
            return m;
        }
    }

    public static Gpt2Tokenizer Tokenizer { get; } = Gpt2Tokenizer.Load(TokenizerDir);

    public static int[] Ints(JsonNode? node) => node!.AsArray().Select(n => n!.GetValue<int>()).ToArray();

    public static float Float(JsonNode? node) => node is JsonValue v && v.TryGetValue(out string? s)
        ? (s == "-inf" ? float.NegativeInfinity : float.Parse(s)) : node!.GetValue<float>();

    private static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "ScratchGpt.sln"))) return d.FullName;
        throw new InvalidOperationException("ScratchGpt.sln not found above the test binaries");
    }

    public static float MaxAbsDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        float m = 0;
        for (int i = 0; i < a.Length; i++)
        {
            if (float.IsNegativeInfinity(a[i]) && float.IsNegativeInfinity(b[i])) continue;
            m = Math.Max(m, Math.Abs(a[i] - b[i]));
            if (float.IsNaN(a[i]) || float.IsNaN(b[i])) return float.NaN;
        }
        return m;
    }
}
