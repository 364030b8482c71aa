using System.Collections.Concurrent;
using System.Text;
using System.Text.Json;

namespace ScratchGpt.Loading;

/// <summary>
/// GPT-2's byte-level BPE tokenizer, from vocab.json (token → id) and merges.txt (ranked pairs).
///
/// encode: split out "&lt;|endoftext|&gt;" → pre-split each text span (<see cref="PreTokenizer"/>) →
/// UTF-8 bytes → byte-level characters (<see cref="ByteLevelAlphabet"/>) → repeatedly merge the
/// adjacent pair with the lowest merge rank → look each piece up in the vocabulary.
/// decode: ids → byte-level strings → bytes → UTF-8 (invalid sequences become U+FFFD).
/// </summary>
public sealed class Gpt2Tokenizer
{
    public const string EndOfText = "<|endoftext|>";

    private readonly Dictionary<string, int> _encoder;
    private readonly string[] _decoder;
    private readonly Dictionary<(string, string), int> _ranks;
    private readonly ConcurrentDictionary<string, int[]> _cache = new();

    public int VocabSize => _decoder.Length;

    /// <summary>The folder the tokenizer's files came from (copied beside a model that training writes).</summary>
    public string? SourceDirectory { get; private init; }
    public int EndOfTextId { get; }

    private Gpt2Tokenizer(Dictionary<string, int> encoder, Dictionary<(string, string), int> ranks)
    {
        _encoder = encoder;
        _ranks = ranks;
        _decoder = new string[encoder.Values.Max() + 1];
        foreach (var (tok, id) in encoder) _decoder[id] = tok;
        EndOfTextId = encoder.TryGetValue(EndOfText, out int eot) ? eot : -1;
    }

    /// <summary>Loads vocab.json and merges.txt from <paramref name="directory"/>.</summary>
    public static Gpt2Tokenizer Load(string directory)
    {
        string vocabPath = System.IO.Path.Combine(directory, "vocab.json");
        string mergesPath = System.IO.Path.Combine(directory, "merges.txt");
        if (!File.Exists(vocabPath)) throw new ModelLoadException($"{vocabPath}: file not found (the GPT-2 tokenizer needs vocab.json and merges.txt)");
        if (!File.Exists(mergesPath)) throw new ModelLoadException($"{mergesPath}: file not found (the GPT-2 tokenizer needs vocab.json and merges.txt)");

        Dictionary<string, int> encoder = new(StringComparer.Ordinal);
        byte[] vocabBytes = File.ReadAllBytes(vocabPath);
        if (!System.Text.Unicode.Utf8.IsValid(vocabBytes)) throw new ModelLoadException($"{vocabPath}: not valid UTF-8");
        try
        {
            using var doc = JsonDocument.Parse(vocabBytes, new JsonDocumentOptions { MaxDepth = 4 });
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{vocabPath}: expected a JSON object of token → id");
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id) || id < 0 || id > 10_000_000)
                    throw new ModelLoadException($"{vocabPath}: token '{p.Name}' has an invalid id {p.Value}");
                if (!encoder.TryAdd(p.Name, id)) throw new ModelLoadException($"{vocabPath}: token '{p.Name}' appears twice");
            }
        }
        catch (JsonException e) { throw new ModelLoadException($"{vocabPath}: not valid JSON: {e.Message.ReplaceLineEndings(" ")}", e); }
        if (encoder.Count == 0) throw new ModelLoadException($"{vocabPath}: the vocabulary is empty");
        if (encoder.Values.Distinct().Count() != encoder.Count) throw new ModelLoadException($"{vocabPath}: two tokens share one id");
        // Byte-level BPE can encode any text only if every one of the 256 byte tokens is in the vocabulary.
        foreach (char c in ByteLevelAlphabet.ByteToChar)
            if (!encoder.ContainsKey(c.ToString()))
                throw new ModelLoadException($"{vocabPath}: the byte token '{c}' (U+{(int)c:X4}) is missing; a GPT-2 vocabulary holds all 256 byte tokens");

        var ranks = new Dictionary<(string, string), int>();
        int lineNo = 0;
        foreach (var line in File.ReadLines(mergesPath, Encoding.UTF8))
        {
            lineNo++;
            if (line.StartsWith("#version", StringComparison.Ordinal) || line.Length == 0) continue;
            int sp = line.IndexOf(' ');
            if (sp <= 0 || sp == line.Length - 1 || line.IndexOf(' ', sp + 1) >= 0)
                throw new ModelLoadException($"{mergesPath}:{lineNo}: expected two tokens separated by one space, got '{Truncate(line)}'");
            string a = line[..sp], b = line[(sp + 1)..];
            // Every merge joins two vocabulary tokens into a third; otherwise encoding would later produce a piece with no id.
            if (!encoder.ContainsKey(a) || !encoder.ContainsKey(b) || !encoder.ContainsKey(a + b))
                throw new ModelLoadException($"{mergesPath}:{lineNo}: merge '{Truncate(line)}' uses or makes a token that is not in vocab.json");
            ranks.TryAdd((a, b), ranks.Count);
        }
        return new Gpt2Tokenizer(encoder, ranks) { SourceDirectory = directory };
    }

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        int pos = 0;
        while (pos <= text.Length)
        {
            int special = EndOfTextId >= 0 ? text.IndexOf(EndOfText, pos, StringComparison.Ordinal) : -1;
            int end = special < 0 ? text.Length : special;
            foreach (var piece in PreTokenizer.Split(text[pos..end])) ids.AddRange(EncodePiece(piece));
            if (special < 0) break;
            ids.Add(EndOfTextId);
            pos = special + EndOfText.Length;
        }
        return ids.ToArray();
    }

    private int[] EncodePiece(string piece) => _cache.Count < 100_000
        ? _cache.GetOrAdd(piece, Bpe)
        : (_cache.TryGetValue(piece, out var hit) ? hit : Bpe(piece));

    /// <summary>Byte-pair encoding of one pre-split piece.</summary>
    private int[] Bpe(string piece)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(piece);
        var parts = new List<string>(bytes.Length);
        foreach (byte b in bytes) parts.Add(ByteLevelAlphabet.ByteToChar[b].ToString());

        while (parts.Count > 1)
        {
            // Find the adjacent pair with the lowest rank; stop when no pair is mergeable.
            int bestRank = int.MaxValue;
            (string, string) best = default;
            for (int i = 0; i + 1 < parts.Count; i++)
                if (_ranks.TryGetValue((parts[i], parts[i + 1]), out int r) && r < bestRank) { bestRank = r; best = (parts[i], parts[i + 1]); }
            if (bestRank == int.MaxValue) break;

            // Merge every occurrence of that pair, left to right.
            var merged = new List<string>(parts.Count);
            for (int i = 0; i < parts.Count; i++)
            {
                if (i + 1 < parts.Count && parts[i] == best.Item1 && parts[i + 1] == best.Item2) { merged.Add(best.Item1 + best.Item2); i++; }
                else merged.Add(parts[i]);
            }
            parts = merged;
        }

        var ids = new int[parts.Count];
        for (int i = 0; i < parts.Count; i++)
            ids[i] = _encoder.TryGetValue(parts[i], out int id) ? id
                : throw new ModelLoadException($"tokenizer: piece '{parts[i]}' is not in vocab.json (vocab and merges do not match)");
        return ids;
    }

    /// <summary>The byte-level token strings ('Ġthe', 'Ċ'), as convert_ids_to_tokens gives them.</summary>
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) => ids.Select(IdToToken).ToArray();

    public string IdToToken(int id) =>
        id >= 0 && id < _decoder.Length && _decoder[id] is { } t ? t
            : throw new ArgumentOutOfRangeException(nameof(id), $"token id {id} is outside the vocabulary (0..{_decoder.Length - 1})");

    public bool TryGetId(string token, out int id) => _encoder.TryGetValue(token, out id);

    /// <summary>Decodes ids to text. With <paramref name="cleanUpSpaces"/> (transformers' default) " ." → "." etc.</summary>
    public string Decode(IEnumerable<int> ids, bool cleanUpSpaces = true, bool skipSpecialTokens = false)
    {
        var bytes = new List<byte>();
        foreach (int id in ids)
        {
            if (skipSpecialTokens && id == EndOfTextId) continue;
            foreach (char c in IdToToken(id))
            {
                if (ByteLevelAlphabet.TryGetByte(c, out byte b)) bytes.Add(b);
                else bytes.AddRange(Encoding.UTF8.GetBytes(c.ToString()));   // special tokens are plain text
            }
        }
        string text = Encoding.UTF8.GetString(bytes.ToArray());
        return cleanUpSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>transformers' clean_up_tokenization: removes the space before punctuation and English contractions.</summary>
    public static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s")
        .Replace(" 've", "'ve").Replace(" 're", "'re");

    private static string Truncate(string s) => s.Length > 60 ? s[..60] + "…" : s;
}
