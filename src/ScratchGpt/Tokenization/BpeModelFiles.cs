using System.Text;
using System.Text.Json;
using ScratchGpt.Loading;

namespace ScratchGpt.Tokenization;

/// <summary>
/// A byte-level BPE model as read from a folder, checked before the tokenizer library sees it: either
/// vocab.json (token → id) + merges.txt (one "a b" pair per line, best first), or the Hugging Face fast-tokenizer
/// file tokenizer.json (model.vocab, model.merges, added_tokens). Every problem is one
/// <see cref="ModelLoadException"/> naming the file, so a bad download never reaches the encoder.
/// </summary>
public sealed class BpeModelFiles
{
    public required Dictionary<string, int> Vocabulary { get; init; }
    /// <summary>Merge rules, best first, as "a b".</summary>
    public required List<string> Merges { get; init; }
    /// <summary>Tokens split out of the text before BPE (GPT-2's &lt;|endoftext|&gt;, tokenizer.json's added
    /// tokens).</summary>
    public required Dictionary<string, int> SpecialTokens { get; init; }
    public required string Directory { get; init; }

    public const string VocabFile = "vocab.json", MergesFile = "merges.txt", TokenizerJsonFile = "tokenizer.json";

    /// <summary>True when <paramref name="directory"/> holds vocab.json + merges.txt or tokenizer.json.</summary>
    public static bool ExistIn(string directory) =>
        File.Exists(Path.Combine(directory, VocabFile)) || File.Exists(Path.Combine(directory, TokenizerJsonFile));

    /// <summary>Reads vocab.json + merges.txt when vocab.json is there, else tokenizer.json.</summary>
    public static BpeModelFiles Read(string directory)
    {
        string vocabPath = Path.Combine(directory, VocabFile), mergesPath = Path.Combine(directory, MergesFile);
        string jsonPath = Path.Combine(directory, TokenizerJsonFile);
        if (File.Exists(vocabPath))
        {
            if (!File.Exists(mergesPath))
                throw new ModelLoadException($"{mergesPath}: file not found (vocab.json needs merges.txt beside it)");
            var vocab = ReadVocab(vocabPath);
            return Checked(new BpeModelFiles
            {
                Vocabulary = vocab,
                Merges = ReadMergesTxt(mergesPath),
                SpecialTokens = vocab.TryGetValue(Gpt2Tokenizer.EndOfText, out int eot)
                ? new() { [Gpt2Tokenizer.EndOfText] = eot } : [], Directory = directory,
            }, vocabPath, mergesPath);
        }
        if (File.Exists(jsonPath)) return ReadTokenizerJson(jsonPath, directory);
        throw new ModelLoadException($"{vocabPath}: file not found (a GPT-2 tokenizer is vocab.json + merges.txt, or " +
            "tokenizer.json)");
    }

    private static Dictionary<string, int> ReadVocab(string path)
    {
        using var doc = ParseJson(path, maxDepth: 4);
        return VocabFrom(doc.RootElement, path, "");
    }

    private static Dictionary<string, int> VocabFrom(JsonElement e, string path, string where)
    {
        if (e.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{path}: expected {where}a JSON object of token → id");
        Dictionary<string, int> vocab = new(StringComparer.Ordinal);
        foreach (var p in e.EnumerateObject())
        {
            if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id)
                || id is < 0 or > 10_000_000)
                throw new ModelLoadException($"{path}: {where}token '{Truncate(p.Name)}' has an invalid id " +
                    $"{Truncate(p.Value.GetRawText())}");
            if (!vocab.TryAdd(p.Name, id))
                throw new ModelLoadException($"{path}: {where}token '{Truncate(p.Name)}' appears twice");
        }
        if (vocab.Count == 0) throw new ModelLoadException($"{path}: {where}the vocabulary is empty");
        return vocab;
    }

    private static List<string> ReadMergesTxt(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new ModelLoadException($"{path}: not valid UTF-8");
        var merges = new List<string>();
        int lineNo = 0;
        foreach (var line in Encoding.UTF8.GetString(bytes).Split('\n'))
        {
            lineNo++;
            string l = line.TrimEnd('\r');
            if (l.Length == 0 || (lineNo == 1 && l.StartsWith("#version", StringComparison.Ordinal))) continue;
            int sp = l.IndexOf(' ');
            if (sp <= 0 || sp == l.Length - 1 || l.IndexOf(' ', sp + 1) >= 0)
                throw new ModelLoadException($"{path}:{lineNo}: expected two tokens separated by one space, got " +
                    $"'{Truncate(l)}'");
            merges.Add(l);
        }
        return merges;
    }

    /// <summary>tokenizer.json: a BPE model whose pre-tokenizer and decoder are ByteLevel (GPT-2's), no
    /// normalizer.</summary>
    private static BpeModelFiles ReadTokenizerJson(string path, string directory)
    {
        using var doc = ParseJson(path, maxDepth: 64);
        var root = doc.RootElement;
        if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("model", out var model)
            || model.ValueKind != JsonValueKind.Object)
            throw new ModelLoadException($"{path}: expected a JSON object with a \"model\" object");
        string type = model.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()!
            : "BPE";
        if (type != "BPE")
            throw new ModelLoadException($"{path}: model.type is '{Truncate(type)}'; ScratchGpt reads byte-level BPE " +
                "(GPT-2's)");
        RequireByteLevel(root, "pre_tokenizer", path);
        RequireByteLevel(root, "decoder", path);
        if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind != JsonValueKind.Null)
            throw new ModelLoadException($"{path}: has a normalizer; GPT-2's tokenizer has none");
        if (!model.TryGetProperty("vocab", out var vocabJson))
            throw new ModelLoadException($"{path}: model.vocab is missing");
        var vocab = VocabFrom(vocabJson, path, "model.vocab: ");

        if (!model.TryGetProperty("merges", out var mergesJson) || mergesJson.ValueKind != JsonValueKind.Array)
            throw new ModelLoadException($"{path}: model.merges is missing or not an array");
        var merges = new List<string>();
        int i = 0;
        foreach (var m in mergesJson.EnumerateArray())
        {
            // Two forms: "a b" (tokenizers < 0.20) and ["a", "b"].
            string? a = null, b = null;
            if (m.ValueKind == JsonValueKind.String && m.GetString()!.Split(' ') is [var x, var y]) (a, b) = (x, y);
            else if (m.ValueKind == JsonValueKind.Array && m.GetArrayLength() == 2
                     && m[0].ValueKind == JsonValueKind.String && m[1].ValueKind == JsonValueKind.String)
                (a, b) = (m[0].GetString(), m[1].GetString());
            if (string.IsNullOrEmpty(a) || string.IsNullOrEmpty(b) || a.Contains(' ') || b.Contains(' '))
                throw new ModelLoadException($"{path}: model.merges[{i}] is not a pair of tokens: " +
                    $"{Truncate(m.GetRawText())}");
            merges.Add(a + " " + b);
            i++;
        }

        var special = new Dictionary<string, int>(StringComparer.Ordinal);
        if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind != JsonValueKind.Null)
        {
            if (added.ValueKind != JsonValueKind.Array)
                throw new ModelLoadException($"{path}: added_tokens is not an array");
            foreach (var a in added.EnumerateArray())
            {
                if (a.ValueKind != JsonValueKind.Object
                    || !a.TryGetProperty("content", out var c) || c.ValueKind != JsonValueKind.String
                    || c.GetString() is not { Length: > 0 } content
                    || !a.TryGetProperty("id", out var idJson) || !idJson.TryGetInt32(out int id)
                    || id is < 0 or > 10_000_000)
                    throw new ModelLoadException($"{path}: added_tokens has an entry without a content string and an " +
                        $"id: {Truncate(a.GetRawText())}");
                // An added token either is a vocabulary token under the same id or extends the vocabulary.
                if (vocab.TryGetValue(content, out int have) ? have != id : !vocab.TryAdd(content, id))
                    throw new ModelLoadException($"{path}: added token '{Truncate(content)}' has id {id}, which " +
                        "disagrees with model.vocab");
                special[content] = id;
            }
        }
        return Checked(
            new BpeModelFiles { Vocabulary = vocab, Merges = merges, SpecialTokens = special, Directory = directory },
            path, path);
    }

    /// <summary>The component must be ByteLevel, alone or inside a Sequence, with GPT-2's settings.</summary>
    private static void RequireByteLevel(JsonElement root, string name, string path)
    {
        // absent: GPT-2's defaults
        if (!root.TryGetProperty(name, out var e) || e.ValueKind == JsonValueKind.Null) return;
        var parts = new List<JsonElement>();
        if (e.ValueKind == JsonValueKind.Object && e.TryGetProperty("type", out var ty)
            && ty.ValueKind == JsonValueKind.String && ty.GetString() == "Sequence")
        {
            string list = name == "decoder" ? "decoders" : "pretokenizers";
            if (e.TryGetProperty(list, out var items) && items.ValueKind == JsonValueKind.Array)
                parts.AddRange(items.EnumerateArray());
        }
        else parts.Add(e);
        // The decoder's settings don't matter (ByteLevel decoding only maps characters back to bytes); the
        // pre-tokenizer's do: GPT-2 adds no prefix space and splits with its own regex.
        bool ok = parts.Count == 1 && parts[0].ValueKind == JsonValueKind.Object
            && parts[0].TryGetProperty("type", out var pt) && pt.ValueKind == JsonValueKind.String
            && pt.GetString() == "ByteLevel"
            && (name == "decoder"
                || (!(parts[0].TryGetProperty("add_prefix_space", out var aps) && aps.ValueKind == JsonValueKind.True)
                    && !(parts[0].TryGetProperty("use_regex", out var ur) && ur.ValueKind == JsonValueKind.False)));
        if (!ok) throw new ModelLoadException($"{path}: {name} is {Truncate(e.GetRawText())}; ScratchGpt reads " +
            "GPT-2's: " +
            (name == "decoder" ? "ByteLevel" : "ByteLevel with GPT-2's split pattern and no prefix space"));
    }

    /// <summary>The checks byte-level BPE needs to encode any text: all 256 byte tokens, unique ids, and merges
    /// that join two vocabulary tokens into a third (else encoding would produce a piece with no id).</summary>
    private static BpeModelFiles Checked(BpeModelFiles f, string vocabPath, string mergesPath)
    {
        var ids = new HashSet<int>();
        foreach (var (tok, id) in f.Vocabulary)
            if (!ids.Add(id))
                throw new ModelLoadException($"{vocabPath}: two tokens share the id {id} (one is '{Truncate(tok)}')");
        foreach (char c in ByteLevelAlphabet.ByteToChar)
            if (!f.Vocabulary.ContainsKey(c.ToString()))
                throw new ModelLoadException($"{vocabPath}: the byte token '{c}' (U+{(int)c:X4}) is missing; a " +
                    "byte-level BPE vocabulary holds all 256");
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < f.Merges.Count; i++)
        {
            string m = f.Merges[i];
            int sp = m.IndexOf(' ');
            string a = m[..sp], b = m[(sp + 1)..];
            if (!f.Vocabulary.ContainsKey(a) || !f.Vocabulary.ContainsKey(b) || !f.Vocabulary.ContainsKey(a + b))
                throw new ModelLoadException($"{mergesPath}: merge #{i + 1} '{Truncate(m)}' uses or makes a token " +
                    "that is not in the vocabulary");
            if (!seen.Add(m)) { f.Merges.RemoveAt(i--); }   // a repeated merge keeps its first (best) rank
        }
        return f;
    }

    private static JsonDocument ParseJson(string path, int maxDepth)
    {
        byte[] bytes = File.ReadAllBytes(path);
        if (!System.Text.Unicode.Utf8.IsValid(bytes)) throw new ModelLoadException($"{path}: not valid UTF-8");
        try { return JsonDocument.Parse(bytes, new JsonDocumentOptions { MaxDepth = maxDepth }); }
        catch (JsonException e)
        {
            throw new ModelLoadException($"{path}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "…" : s;
}
