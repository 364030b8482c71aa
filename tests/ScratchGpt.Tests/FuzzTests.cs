using ScratchGpt.Tokenization;
using System.Text;
using System.Text.Json.Nodes;
using ScratchGpt.Loading;
using ScratchGpt.Training;
using Xunit.Abstractions;

namespace ScratchGpt.Tests;

/// <summary>
/// Hostile inputs, seeded and repeatable: thousands of mutated safetensors files, config.json files
/// and tokenizer files. Each case must either load correctly or fail with the loader's own
/// <see cref="ModelLoadException"/> and a one-line message; any other exception is a bug. Set
/// SCRATCHGPT_LONG=1 (or run .ci/run --long) for ten times as many random cases.
/// </summary>
public sealed class FuzzTests(ITestOutputHelper output) : IDisposable
{
    private static int Scale => Fixtures.LongRunScale;
    private readonly string _dir = Directory.CreateTempSubdirectory("sgpt-fuzz").FullName;
    public void Dispose() => Directory.Delete(_dir, true);

    private static readonly Gpt2Config Small = new()
    {
        VocabSize = 64,
        NPositions = 16,
        NEmbd = 16,
        NLayer = 1,
        NHead = 2,
    };

    /// <summary>Runs one case; returns "ok", "refused", or a description of the bug.</summary>
    private static string Outcome(Action load)
    {
        try { load(); return "ok"; }
        catch (ModelLoadException e)
        {
            return e.Message.Length == 0 || e.Message.Contains('\n') ? $"BUG: multi-line or empty message: {e.Message}"
                : "refused";
        }
        catch (Exception e) { return $"BUG: {e.GetType().Name}: {e.Message}"; }
    }

    private void Report(string what, List<(string Case, string Outcome)> results)
    {
        var bugs = results.Where(r => r.Outcome.StartsWith("BUG")).ToList();
        output.WriteLine($"fuzz {what}: {results.Count} cases, {results.Count(r => r.Outcome == "ok")} loaded, " +
            $"{results.Count(r => r.Outcome == "refused")} refused, {bugs.Count} bugs");
        Assert.True(bugs.Count == 0,
            string.Join("\n",
            bugs.DistinctBy(b => b.Outcome[..Math.Min(40, b.Outcome.Length)]).Take(10)
            .Select(b => $"{b.Case}: {b.Outcome}")));
    }

    // ---- safetensors --------------------------------------------------------------------------------

    [Fact]
    public void Mutated_safetensors_files_load_or_are_refused_cleanly()
    {
        string clean = Path.Combine(_dir, "clean");
        Directory.CreateDirectory(clean);
        RandomCheckpoint.Write(Small, clean, "f32", 3);
        byte[] original = File.ReadAllBytes(Path.Combine(clean, "model.safetensors"));
        int headerEnd = 8 + (int)BitConverter.ToUInt64(original, 0);
        string path = Path.Combine(_dir, "model.safetensors");
        var results = new List<(string, string)>();
        void Try(string name, byte[] bytes)
        {
            File.WriteAllBytes(path, bytes);
            results.Add((name, Outcome(() =>
            {
                using var f = SafetensorsFile.Open(path);
                Gpt2Parameters.FromCheckpoint(new Gpt2Checkpoint(f, Small));
            })));
        }
        var rng = new Random(2026);

        // Truncation at every byte of the length field and header, and at random points in the data.
        for (int n = 0; n <= headerEnd; n++) Try($"truncate {n}", original[..n]);
        for (int i = 0; i < 100 * Scale; i++)
        {
            int n = rng.Next(headerEnd, original.Length);
            Try($"truncate {n}", original[..n]);
        }
        // Random bytes written over the header.
        for (int i = 0; i < 1500 * Scale; i++)
        {
            var b = (byte[])original.Clone();
            int flips = 1 + rng.Next(4);
            var where = new List<int>();
            for (int k = 0; k < flips; k++)
            {
                int at = 8 + rng.Next(headerEnd - 8);
                b[at] = (byte)rng.Next(256);
                where.Add(at);
            }
            Try($"header bytes at {string.Join(",", where)}", b);
        }
        // The header length itself: zero, tiny, huge, "negative", off by one.
        foreach (ulong len in new ulong[] { 0, 1, 2, 7, (ulong)headerEnd - 9, (ulong)headerEnd - 7,
            (ulong)original.Length, int.MaxValue, (ulong)int.MaxValue + 1, 1UL << 63, ulong.MaxValue })
        {
            var b = (byte[])original.Clone();
            BitConverter.GetBytes(len).CopyTo(b, 0);
            Try($"header length {len}", b);
        }
        // Structural edits of the header JSON.
        var header = JsonNode.Parse(Encoding.UTF8.GetString(original, 8, headerEnd - 8))!.AsObject();
        var names = header.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        byte[] WithHeader(string json, byte[]? data = null)
        {
            var h = Encoding.UTF8.GetBytes(json);
            var d = data ?? original[headerEnd..];
            return [.. BitConverter.GetBytes((ulong)h.Length), .. h, .. d];
        }
        string Edit(Action<JsonObject> change)
        {
            var copy = JsonNode.Parse(header.ToJsonString())!.AsObject();
            change(copy);
            return copy.ToJsonString();
        }
        long dataLength = original.Length - headerEnd;
        foreach (string name in names)
        {
            var edits = new Dictionary<string, Action<JsonObject>>
            {
                ["end past the data"] = o => o[name]!["data_offsets"]![1] = dataLength + 4,
                ["begin after end"] = o =>
                    { var off = o[name]!["data_offsets"]!; (off[0], off[1]) = (off[1]!.GetValue<long>(),
                    off[0]!.GetValue<long>()); },
                ["negative offset"] = o => o[name]!["data_offsets"]![0] = -4,
                ["overlapping"] = o =>
                    o[name]!["data_offsets"] = JsonNode.Parse(
                    o[names[0] == name ? names[^1] : names[0]]!["data_offsets"]!.ToJsonString()),
                ["unknown dtype"] = o => o[name]!["dtype"] = "F17",
                ["integer dtype"] = o => o[name]!["dtype"] = "I32",
                ["dtype not a string"] = o => o[name]!["dtype"] = 5,
                ["negative dimension"] = o => o[name]!["shape"]![0] = -1,
                ["overflowing shape"] = o => o[name]!["shape"] = new JsonArray(1L << 40, 1L << 40, 1L << 40),
                ["shape not an array"] = o => o[name]!["shape"] = "16",
                ["shape of strings"] = o => o[name]!["shape"] = new JsonArray("a"),
                ["missing offsets"] = o => o[name]!.AsObject().Remove("data_offsets"),
                ["entry not an object"] = o => o[name] = 7,
                ["three offsets"] = o => o[name]!["data_offsets"]!.AsArray().Add(0),
                ["removed"] = o => o.Remove(name),
                ["metadata not strings"] = o => o["__metadata__"] = new JsonObject { ["format"] = 1 },
            };
            foreach (var (what, change) in edits) Try($"{name}: {what}", WithHeader(Edit(change)));
        }
        string raw = header.ToJsonString();
        Try("duplicate name",
            WithHeader(raw.TrimEnd('}') + $",\"{names[0]}\":" + header[names[0]]!.ToJsonString() + "}"));
        Try("header is an array", WithHeader("[" + raw + "]"));
        Try("trailing garbage", WithHeader(raw + "xx"));
        Try("byte order mark", WithHeader("\uFEFF" + raw));
        Try("nesting bomb", WithHeader("{\"a\":" + new string('[', 100_000) + new string(']', 100_000) + "}"));
        Try("deep metadata",
            WithHeader(raw.TrimEnd('}') + ",\"__metadata__\":{\"x\":" + new string('{', 5000) + new string('}', 5000)
            + "}}"));
        Try("not UTF-8 name",
            [.. BitConverter.GetBytes((ulong)(headerEnd - 8)),
            .. Encoding.UTF8.GetBytes(raw).Select((c, i) => i == 2 ? (byte)0xFF : c), .. original[headerEnd..]]);
        Try("empty object", WithHeader("{}", []));
        Report("safetensors", results);
        Assert.True(results.Count >= 1500, $"only {results.Count} cases");
        Assert.Contains(results, r => r.Item2 == "ok");
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Non_finite_weights_are_refused_naming_the_tensor(float bad)
    {
        RandomCheckpoint.Write(Small, _dir, "f32", 3);
        string path = Path.Combine(_dir, "model.safetensors");
        byte[] b = File.ReadAllBytes(path);
        BitConverter.GetBytes(bad).CopyTo(b, b.Length - 8);      // inside the last tensor in name order
        File.WriteAllBytes(path, b);
        var e = Assert.Throws<ModelLoadException>(() => Gpt2Parameters.Load(_dir));
        Assert.Contains("tensor 'transformer.wte.weight'",
            e.Message.Replace("'wte.weight'", "'transformer.wte.weight'"));
        Assert.Contains(bad.ToString(), e.Message);
    }

    // ---- config.json --------------------------------------------------------------------------------

    [Theory]
    [InlineData("scale_attn_weights", false, "scale_attn_weights=false is not supported")]
    [InlineData("scale_attn_by_inverse_layer_idx", true, "scale_attn_by_inverse_layer_idx=true is not supported")]
    [InlineData("tie_word_embeddings", false, "tie_word_embeddings=false is not supported")]
    public void Configs_asking_for_a_different_model_are_refused_not_run_wrongly(string key, bool value, string message)
    {
        var json = JsonNode.Parse(
            File.ReadAllText(Path.Combine(Fixtures.Model("tiny-gpt2"), "config.json")))!.AsObject();
        json[key] = value;
        string path = Path.Combine(_dir, "config.json");
        File.WriteAllText(path, json.ToJsonString());
        var e = Assert.Throws<ModelLoadException>(() => Gpt2Config.Load(path));
        Assert.Equal($"{path}: {message}", e.Message[..(path.Length + 2 + message.Length)]);
        json[key] = !value;   // GPT-2's own setting loads
        File.WriteAllText(path, json.ToJsonString());
        Assert.Equal(2, Gpt2Config.Load(path).NLayer);
    }

    [Fact]
    public void Mutated_config_files_load_or_are_refused_cleanly()
    {
        string original = File.ReadAllText(Path.Combine(Fixtures.Model("tiny-gpt2"), "config.json"));
        string path = Path.Combine(_dir, "config.json");
        var results = new List<(string, string)>();
        void Try(string name, byte[] bytes)
        {
            File.WriteAllBytes(path, bytes);
            results.Add((name, Outcome(() => Gpt2Config.Load(path).Validate(path))));
        }
        byte[] bytes = Encoding.UTF8.GetBytes(original);
        var rng = new Random(7);
        for (int n = 0; n < bytes.Length; n++) Try($"truncate {n}", bytes[..n]);
        for (int i = 0; i < 600 * Scale; i++)
        {
            var b = (byte[])bytes.Clone();
            for (int k = 0, flips = 1 + rng.Next(3); k < flips; k++) b[rng.Next(b.Length)] = (byte)rng.Next(256);
            Try($"random bytes #{i}", b);
        }
        var json = JsonNode.Parse(original)!.AsObject();
        JsonNode?[] values = [null, "x", -1, 0, 1, 3, 1e12, 2147483648L, -2147483649L, 0.5, true, new JsonArray(),
            new JsonObject(), "gpt2", "gelu"];
        foreach (string key in json.Select(kv => kv.Key).ToList())
            foreach (var v in values)
            {
                var copy = JsonNode.Parse(original)!.AsObject();
                copy[key] = v?.DeepClone();
                Try($"{key} = {v?.ToJsonString() ?? "null"}", Encoding.UTF8.GetBytes(copy.ToJsonString()));
            }
        Try("nesting bomb", Encoding.UTF8.GetBytes("{\"n_embd\":" + new string('[', 100_000) + "}"));
        Try("array", Encoding.UTF8.GetBytes("[" + original + "]"));
        Try("empty", []);
        Report("config.json", results);
        Assert.Contains(results, r => r.Item2 == "ok");
    }

    // ---- tokenizer files ----------------------------------------------------------------------------

    /// <summary>Loads the tokenizer in the fuzz folder; one that loads must then encode and decode hostile
    /// text.</summary>
    private string LoadAndEncode(string text)
    {
        Gpt2Tokenizer? tok = null;
        string outcome = Outcome(() => tok = Gpt2Tokenizer.Load(_dir));
        if (tok is null) return outcome;
        try { tok.Decode(tok.Encode(text)); tok.ConvertIdsToTokens(tok.Encode(text)); }
        catch (Exception e) { return $"BUG: loaded, then encoding threw {e.GetType().Name}: {e.Message}"; }
        return outcome;
    }

    /// <summary>A small but real GPT-2 tokenizer: the tokens with ids below 700 (the 256 byte tokens among them)
    /// and the merges that build on them.</summary>
    private static (Dictionary<string, int> Vocab, List<string> Merges) SmallTokenizer()
    {
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TokenizerDir, "vocab.json")))!.AsObject();
        var keep = vocab.Where(kv => kv.Value!.GetValue<int>() < 700)
            .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>());
        var merges = File.ReadLines(Path.Combine(Fixtures.TokenizerDir, "merges.txt")).Skip(1)
            .Where(l => l.Split(' ') is [var a, var b] && keep.ContainsKey(a) && keep.ContainsKey(b)
            && keep.ContainsKey(a + b)).ToList();
        return (keep, merges);
    }

    [Fact]
    public void Mutated_tokenizer_files_load_or_are_refused_cleanly_and_never_break_encoding()
    {
        var (keep, merges) = SmallTokenizer();
        byte[] vocabBytes = Encoding.UTF8.GetBytes(
            new JsonObject(keep.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))).ToJsonString());
        byte[] mergeBytes = Encoding.UTF8.GetBytes("#version: 0.2\n" + string.Join("\n", merges) + "\n");
        string text = "ROMEO: But soft, what light through yonder window breaks? ¿Qué tal? 日本 \0\u0007 \uD800 tab\tend";
        var results = new List<(string, string)>();
        void Try(string name, byte[] v, byte[] m)
        {
            File.WriteAllBytes(Path.Combine(_dir, "vocab.json"), v);
            File.WriteAllBytes(Path.Combine(_dir, "merges.txt"), m);
            results.Add((name, LoadAndEncode(text)));
        }
        Try("clean", vocabBytes, mergeBytes);
        Assert.Equal("ok", results[0].Item2);
        var rng = new Random(11);
        for (int i = 0; i < 300 * Scale; i++)
        {
            int n = rng.Next(vocabBytes.Length); Try($"vocab truncated at {n}", vocabBytes[..n], mergeBytes);
            n = rng.Next(mergeBytes.Length); Try($"merges truncated at {n}", vocabBytes, mergeBytes[..n]);
        }
        for (int i = 0; i < 400 * Scale; i++)
        {
            var v = (byte[])vocabBytes.Clone(); v[rng.Next(v.Length)] = (byte)rng.Next(256);
            Try($"vocab random byte #{i}", v, mergeBytes);
            var m = (byte[])mergeBytes.Clone(); m[rng.Next(m.Length)] = (byte)rng.Next(256);
            Try($"merges random byte #{i}", vocabBytes, m);
        }
        string vocabText = Encoding.UTF8.GetString(vocabBytes);
        foreach (var (what, v) in new[]
        {
            ("negative id", vocabText.Replace("\"!\":0", "\"!\":-1")),
            ("huge id", vocabText.Replace("\"!\":0", "\"!\":99999999999")),
            ("string id", vocabText.Replace("\"!\":0", "\"!\":\"0\"")),
            ("duplicate id", vocabText.Replace("\"!\":0", "\"!\":1")),
            ("array", "[" + vocabText + "]"),
            ("empty object", "{}"),
            ("nesting bomb", "{\"a\":" + new string('[', 50_000) + "}"),
            ("missing byte tokens", "{\"a\":0,\"b\":1}"),
        })
            Try($"vocab {what}", Encoding.UTF8.GetBytes(v), mergeBytes);
        foreach (var (what, m) in new[] { ("one token", "a\n"), ("three tokens", "a b c\n"),
            ("unknown tokens", "zzz qqq\nĠt he\n"), ("merge makes unknown token", "Ġ !\n") })
            Try($"merges {what}", vocabBytes, Encoding.UTF8.GetBytes("#version: 0.2\n" + m));
        Report("tokenizer", results);
    }

    [Fact]
    public void Mutated_tokenizer_json_loads_or_is_refused_cleanly_and_never_breaks_encoding()
    {
        // The same small tokenizer as one tokenizer.json (pair-form merges, one added token).
        var (keep, merges) = SmallTokenizer();
        var doc = TokenizerJson.Build(keep, merges, pairForm: true, addedTokens: [("<|endoftext|>", 700)]);
        string original = doc.ToJsonString();
        string text = "ROMEO: But soft<|endoftext|>, what light? ¿Qué tal? 日本 \0\u0007 \uD800 tab\tend";
        var results = new List<(string, string)>();
        string path = Path.Combine(_dir, "tokenizer.json");
        File.Delete(Path.Combine(_dir, "vocab.json"));
        void Try(string name, byte[] bytes)
        {
            File.WriteAllBytes(path, bytes);
            results.Add((name, LoadAndEncode(text)));
        }
        void TryText(string name, string json) => Try(name, Encoding.UTF8.GetBytes(json));
        TryText("clean", original);
        Assert.Equal("ok", results[0].Item2);
        byte[] bytes = Encoding.UTF8.GetBytes(original);
        var rng = new Random(17);
        for (int i = 0; i < 300 * Scale; i++) { int n = rng.Next(bytes.Length); Try($"truncated at {n}", bytes[..n]); }
        for (int i = 0; i < 600 * Scale; i++)
        {
            var b = (byte[])bytes.Clone(); b[rng.Next(b.Length)] = (byte)rng.Next(256);
            Try($"random byte #{i}", b);
        }
        JsonNode Edit(Action<JsonObject> change) { var d = JsonNode.Parse(original)!.AsObject(); change(d); return d; }
        foreach (var (what, d) in new (string, JsonNode)[]
        {
            ("unigram model", Edit(d => d["model"]!["type"] = "Unigram")),
            ("no vocab", Edit(d => d["model"]!.AsObject().Remove("vocab"))),
            ("merges not an array", Edit(d => d["model"]!["merges"] = "a b")),
            ("merge of three", Edit(d => d["model"]!["merges"]!.AsArray().Add(new JsonArray("a", "b", "c")))),
            ("merge of numbers", Edit(d => d["model"]!["merges"]!.AsArray().Add(new JsonArray(1, 2)))),
            ("merge of unknown tokens",
            Edit(d => d["model"]!["merges"]!.AsArray().Insert(0, new JsonArray("zzz", "qqq")))),
            ("merge making an unknown token",
            Edit(d => d["model"]!["merges"]!.AsArray().Insert(0, new JsonArray("Ġ", "!")))),
            ("negative id", Edit(d => d["model"]!["vocab"]!["!"] = -1)),
            ("duplicate id", Edit(d => d["model"]!["vocab"]!["!"] = 1)),
            ("missing byte token", Edit(d => d["model"]!["vocab"]!.AsObject().Remove("!"))),
            ("added token id clash", Edit(d => d["added_tokens"]![0]!["id"] = 5)),
            ("added token without content", Edit(d => d["added_tokens"]![0]!.AsObject().Remove("content"))),
            ("added tokens not an array", Edit(d => d["added_tokens"] = 3)),
            ("lowercase normalizer", Edit(d => d["normalizer"] = new JsonObject { ["type"] = "Lowercase" })),
            ("whitespace pre-tokenizer", Edit(d => d["pre_tokenizer"] = new JsonObject { ["type"] = "Whitespace" })),
            ("prefix space", Edit(d => d["pre_tokenizer"]!["add_prefix_space"] = true)),
            ("another split regex",
            Edit(d => d["pre_tokenizer"] = new JsonObject { ["type"] = "Sequence", ["pretokenizers"] = new JsonArray(
                new JsonObject { ["type"] = "Split" },
                new JsonObject { ["type"] = "ByteLevel", ["use_regex"] = false }) })),
            ("metaspace decoder", Edit(d => d["decoder"] = new JsonObject { ["type"] = "Metaspace" })),
            ("model is a string", Edit(d => d["model"] = "BPE")),
        })
            TryText(what, d.ToJsonString());
        foreach (var (what, json) in new[] { ("array", "[" + original + "]"), ("empty", ""),
            ("nesting bomb", "{\"model\":" + new string('[', 50_000) + "}") })
            TryText(what, json);
        Assert.All(results.Skip(results.Count - 22), r => Assert.Equal("refused", r.Item2));
        Report("tokenizer.json", results);
    }
}
