namespace ScratchGpt.Loading;

/// <summary>The tokenizer as GGUF stores it for a GPT-2 ("gpt2" BPE): one string per id, its type (1 normal,
/// 3 control, 5 unused), the merges as "a b", and the special ids.</summary>
public sealed record GgufVocabulary(string[] Tokens, int[] TokenTypes, string[] Merges, int? BosId, int? EosId)
{
    public const int Normal = 1, Control = 3, Unused = 5;
}
