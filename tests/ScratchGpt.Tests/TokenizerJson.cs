using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>Writes a Hugging Face tokenizer.json for a byte-level BPE, as the `tokenizers` library saves
/// GPT-2's.</summary>
public static class TokenizerJson
{
    public static JsonObject Build(IReadOnlyDictionary<string, int> vocab, IEnumerable<string> merges, bool pairForm,
        IEnumerable<(string Content, int Id)> addedTokens)
    {
        var added = new JsonArray();
        foreach (var (content, id) in addedTokens)
            added.Add(new JsonObject
            {
                ["id"] = id, ["content"] = content, ["single_word"] = false, ["lstrip"] = false,
                ["rstrip"] = false, ["normalized"] = true, ["special"] = true,
            });
        var mergeArray = new JsonArray();
        foreach (string m in merges)
            mergeArray.Add(pairForm ? new JsonArray(m.Split(' ')[0], m.Split(' ')[1]) : JsonValue.Create(m));
        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false,
                ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true,
                ["trim_offsets"] = false, ["use_regex"] = true },
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true,
                ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE", ["dropout"] = null, ["unk_token"] = null, ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "", ["fuse_unk"] = false, ["byte_fallback"] = false, ["ignore_merges"] = false,
                ["vocab"] = new JsonObject(vocab.OrderBy(kv => kv.Value)
                    .Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)kv.Value))),
                ["merges"] = mergeArray,
            },
        };
    }
}
