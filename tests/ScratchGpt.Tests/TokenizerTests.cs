using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

public class TokenizerTests
{
    public static TheoryData<string> Cases()
    {
        var data = new TheoryData<string>();
        foreach (var c in Fixtures.Json("tokenization.json")["cases"]!.AsArray()) data.Add(c!["name"]!.GetValue<string>());
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
        Assert.Equal('Ġ', Loading.ByteLevelAlphabet.ByteToChar[' ']);
        Assert.Equal('Ċ', Loading.ByteLevelAlphabet.ByteToChar['\n']);
        Assert.Equal('!', Loading.ByteLevelAlphabet.ByteToChar['!']);
        Assert.Equal(256, Loading.ByteLevelAlphabet.ByteToChar.Distinct().Count());
    }
}
