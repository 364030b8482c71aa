using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using ScratchGpt.Loading;
using ScratchGpt.Tokenization;

namespace ScratchGpt.Tests;

public class TokenizerTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixtures.Json("tokenization.json")["cases"]!.AsArray())
            data.Add(c!["name"]!.GetValue<string>());
        return data;
    }

    private static JsonNode Find(string name) =>
        Fixtures.Json("tokenization.json")["cases"]!.AsArray().First(c => c!["name"]!.GetValue<string>() == name)!;

    [Theory, MemberData(nameof(Cases))]
    public void Encode_decode_and_tokens_match_transformers(string name)
    {
        var c = Find(name);
        var tok = Fixtures.Tokenizer;
        string text = c["text"]!.GetValue<string>();
        int[] ids = tok.Encode(text);
        Assert.Equal(Fixtures.Ints(c["ids"]), ids);
        Assert.Equal(c["tokens"]!.AsArray().Select(t => t!.GetValue<string>()), tok.ConvertIdsToTokens(ids));
        Assert.Equal(c["decoded"]!.GetValue<string>(), tok.Decode(ids));
        Assert.Equal(c["decoded_no_cleanup"]!.GetValue<string>(), tok.Decode(ids, cleanUpSpaces: false));
    }

    [Theory]
    [InlineData("naïve café — “quotes” and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛")]
    [InlineData("tabs\t\tand\r\nwindows lines\u00a0nbsp\u2028sep")]
    [InlineData("control \u0001\u0000 chars and <|endoftext|> inside<|endoftext|>text")]
    [InlineData("   ")]
    [InlineData("x")]
    public void Unseen_text_round_trips_byte_exactly(string text)
    {
        var tok = Fixtures.Tokenizer;
        int[] ids = tok.Encode(text);
        Assert.Equal(text, tok.Decode(ids, cleanUpSpaces: false));
    }

    [Fact]
    public void Lone_surrogates_and_long_text_do_not_crash()
    {
        var tok = Fixtures.Tokenizer;
        string bad = "a\ud800b\udc00c";
        Assert.Equal("a\ufffdb\ufffdc", tok.Decode(tok.Encode(bad), cleanUpSpaces: false));
        string longLine = string.Concat(Enumerable.Repeat("All the world's a stage, ", 40_000)); // ~1 MB
        int[] ids = tok.Encode(longLine);
        Assert.Equal(longLine, tok.Decode(ids, cleanUpSpaces: false));
    }

    [Fact]
    public void Byte_level_alphabet_is_gpt2s()
    {
        Assert.Equal('Ġ', ByteLevelAlphabet.ByteToChar[' ']);
        Assert.Equal('Ċ', ByteLevelAlphabet.ByteToChar['\n']);
        Assert.Equal('!', ByteLevelAlphabet.ByteToChar['!']);
        Assert.Equal(256, ByteLevelAlphabet.ByteToChar.Distinct().Count());
    }

    private static Dictionary<string, int> FixtureVocab() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TokenizerDir, "vocab.json")))!.AsObject()
            .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>(), StringComparer.Ordinal);

    private static List<string> FixtureMerges() =>
        File.ReadLines(Path.Combine(Fixtures.TokenizerDir, "merges.txt")).Skip(1).Where(l => l.Length > 0).ToList();

    private static string TempFolder() => Directory.CreateTempSubdirectory("sgpt-tok").FullName;

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void A_folder_with_only_tokenizer_json_tokenizes_as_transformers(bool pairFormMerges)
    {
        var vocab = FixtureVocab();
        vocab.Remove(Gpt2Tokenizer.EndOfText, out int eot);   // as the Hub's file has it: an added token
        string dir = TempFolder();
        try
        {
            var json = TokenizerJson.Build(vocab, FixtureMerges(), pairFormMerges, [(Gpt2Tokenizer.EndOfText, eot)]);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"), json.ToJsonString());
            var tok = Gpt2Tokenizer.ForModel(dir, null, 50257, note: n => Assert.Fail("unexpected note: " + n));
            Assert.Equal(dir, tok.SourceDirectory);
            Assert.Equal(50257, tok.VocabSize);
            foreach (var c in Fixtures.Json("tokenization.json")["cases"]!.AsArray())
            {
                int[] ids = tok.Encode(c!["text"]!.GetValue<string>());
                Assert.Equal(Fixtures.Ints(c["ids"]), ids);
                Assert.Equal(c["tokens"]!.AsArray().Select(t => t!.GetValue<string>()), tok.ConvertIdsToTokens(ids));
                Assert.Equal(c["decoded"]!.GetValue<string>(), tok.Decode(ids));
                Assert.Equal(c["decoded_no_cleanup"]!.GetValue<string>(), tok.Decode(ids, cleanUpSpaces: false));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_folder_with_its_own_ids_is_read_from_its_own_vocab_json()
    {
        // GPT-2's tokens under shuffled ids: the folder's files must be what assigns them.
        var vocab = FixtureVocab();
        int[] perm = Enumerable.Range(0, vocab.Count).ToArray();
        new Random(5).Shuffle(perm);
        string dir = TempFolder();
        try
        {
            var shuffled = vocab.ToDictionary(kv => kv.Key, kv => perm[kv.Value]);
            File.WriteAllText(Path.Combine(dir, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(shuffled));
            File.Copy(Path.Combine(Fixtures.TokenizerDir, "merges.txt"), Path.Combine(dir, "merges.txt"));
            var tok = Gpt2Tokenizer.ForModel(dir, null, 50257);
            Assert.Equal(perm[50256], tok.EndOfTextId);
            foreach (var c in Fixtures.Json("tokenization.json")["cases"]!.AsArray())
            {
                int[] want = Fixtures.Ints(c!["ids"]).Select(i => perm[i]).ToArray();
                Assert.Equal(want, tok.Encode(c["text"]!.GetValue<string>()));
                Assert.Equal(c["decoded"]!.GetValue<string>(), tok.Decode(want));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>Byte-level BPE written the slow, obvious way: the oracle for a merge table that is not
    /// GPT-2's.</summary>
    private static List<string> PlainBpe(string text, IReadOnlyList<string> merges)
    {
        var rank = new Dictionary<(string, string), int>();
        for (int i = 0; i < merges.Count; i++) rank.TryAdd((merges[i].Split(' ')[0], merges[i].Split(' ')[1]), i);
        var pieces = new List<string>();
        var split = new Regex(@"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+");
        foreach (Match m in split.Matches(text))
        {
            var parts = Encoding.UTF8.GetBytes(m.Value).Select(b => ByteLevelAlphabet.ByteToChar[b].ToString())
                .ToList();
            while (true)
            {
                int best = -1;
                for (int i = 0; i + 1 < parts.Count; i++)
                    if (rank.TryGetValue((parts[i], parts[i + 1]), out int r)
                        && (best < 0 || r < rank[(parts[best], parts[best + 1])])) best = i;
                if (best < 0) break;
                var pair = (parts[best], parts[best + 1]);
                var merged = new List<string>();
                for (int i = 0; i < parts.Count; i++)
                    if (i + 1 < parts.Count && (parts[i], parts[i + 1]) == pair)
                    {
                        merged.Add(parts[i] + parts[i + 1]);
                        i++;
                    }
                    else merged.Add(parts[i]);
                parts = merged;
            }
            pieces.AddRange(parts);
        }
        return pieces;
    }

    [Fact]
    public void A_merge_table_that_is_not_gpt2s_encodes_as_plain_bpe()
    {
        // A small vocabulary learned here: the 256 byte tokens plus merges of frequent pairs in the corpus text,
        // numbered in an order of our own.
        string corpus = "the theatre thither; these are the thoughts that thrill the throng. naïve " +
            "café, 1999 ".Repeat(3);
        var merges = new List<string>
        {
            "t h",
            "th e",
            "Ġ the",
            "Ġ th",
            "r e",
            "a t",
            "Ġ a",
            "Ġt h",
            "i n",
            "Ã ¯",
            "1 9",
            "19 9",
        };
        var vocab = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (char c in ByteLevelAlphabet.ByteToChar.Reverse()) vocab[c.ToString()] = vocab.Count;
        foreach (string m in merges) vocab.TryAdd(m.Replace(" ", ""), vocab.Count);
        merges.RemoveAll(m => !vocab.ContainsKey(m.Split(' ')[0]) || !vocab.ContainsKey(m.Split(' ')[1]));
        string dir = TempFolder();
        try
        {
            File.WriteAllText(Path.Combine(dir, "vocab.json"), System.Text.Json.JsonSerializer.Serialize(vocab));
            File.WriteAllText(Path.Combine(dir, "merges.txt"), "#version: 0.2\n" + string.Join("\n", merges) + "\n");
            var tok = Gpt2Tokenizer.Load(dir);
            Assert.Equal(-1, tok.EndOfTextId);
            foreach (string text in new[] { corpus, "There  is\tthe end.\n\nThe theme", "thé 1999 theory" })
            {
                var want = PlainBpe(text, merges).Select(p => vocab[p]).ToArray();
                Assert.Equal(want, tok.Encode(text));
                Assert.Equal(text, tok.Decode(want, cleanUpSpaces: false));
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(" 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛!!𝔘🙂🙂 x", new[] { " 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", " 𝟙𝟚𝟛", "!!", "𝔘", "🙂🙂", " x" })]
    [InlineData("a𐍈b 🙂x", new[] { "a𐍈b", " 🙂", "x" })]   // U+10348 GOTHIC LETTER HWAIR is a letter
    [InlineData("I'm  here's", new[] { "I", "'m", " ", " here", "'s" })]
    public void The_split_sees_code_points_as_python_does(string text, string[] pieces)
    {
        var split = Gpt2PreTokenizer.Create(new Dictionary<string, int>());
        Assert.Equal(pieces, split.PreTokenize(text).Select(p => text.Substring(p.Item1, p.Item2)));
    }

    [Fact]
    public void Decoding_is_the_utf8_of_the_tokens_bytes_with_replacement()
    {
        var tok = Fixtures.Tokenizer;
        var rng = new Random(3);
        for (int n = 0; n < 300; n++)
        {
            int[] ids = Enumerable.Range(0, rng.Next(1, 12))
                .Select(_ => rng.Next(2) == 0 ? rng.Next(256) : rng.Next(50256)).ToArray();
            string want = Encoding.UTF8.GetString(ids.SelectMany(tok.TokenBytes).ToArray());
            Assert.Equal(want, tok.Decode(ids, cleanUpSpaces: false));
        }
    }

    [Fact]
    public void A_stream_decodes_to_the_same_text_as_the_whole()
    {
        // Tokens that straddle clean-up patterns (" .", " n't", " ' ", " 's") and UTF-8 characters split in bytes.
        var tok = Fixtures.Tokenizer;
        var pool = new List<int>();
        foreach (string s in new[] { " .", " '", " n", "'t", "'s", " ", "x", " the", "\n", "?", " ,", "n", "'", "ve",
            " 're", "é", "日", " cat" })
            pool.AddRange(tok.Encode(s));
        pool.AddRange(Encoding.UTF8.GetBytes("é日🙂").Select(b => ByteId(tok, b)));
        pool.Add(tok.EndOfTextId);
        var rng = new Random(9);
        for (int n = 0; n < 3000; n++)
        {
            int[] ids = Enumerable.Range(0, rng.Next(1, 24)).Select(_ => pool[rng.Next(pool.Count)]).ToArray();
            foreach (bool clean in new[] { true, false })
            {
                var stream = new StreamingDetokenizer(tok, clean);
                string got = string.Concat(ids.Select(stream.Push)) + stream.Flush();
                Assert.Equal(tok.Decode(ids, cleanUpSpaces: clean), got);
            }
        }
    }

    private static int ByteId(Gpt2Tokenizer tok, byte b) =>
        tok.TryGetId(ByteLevelAlphabet.ByteToChar[b].ToString(), out int id) ? id
            : throw new InvalidOperationException();
}

file static class StringRepeat
{
    public static string Repeat(this string s, int n) => string.Concat(Enumerable.Repeat(s, n));
}
