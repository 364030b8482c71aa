using System.Text;
using Microsoft.ML.Tokenizers;
using ScratchGpt.Loading;

namespace ScratchGpt.Tokenization;

/// <summary>
/// GPT-2's byte-level BPE tokenizer. Encoding and decoding are Microsoft.ML.Tokenizers' <see cref="BpeTokenizer"/>
/// (byte-level, GPT-2's split pattern from <see cref="Gpt2PreTokenizer"/>, special tokens split out first):
///   encode: "&lt;|endoftext|&gt;" split out → pre-split → UTF-8 bytes → byte characters → merges by rank → ids
///   decode: ids → byte characters → bytes → UTF-8 (invalid sequences become U+FFFD)
/// What is ours: reading and checking the files (<see cref="BpeModelFiles"/>), the byte-level token strings
/// ('Ġthe', as convert_ids_to_tokens gives them), transformers' clean_up_tokenization_spaces, and the bytes of
/// each token for decoding a stream at UTF-8 boundaries (<see cref="StreamingDetokenizer"/>).
/// </summary>
public sealed class Gpt2Tokenizer
{
    public const string EndOfText = "<|endoftext|>";

    private readonly BpeTokenizer _bpe;
    private readonly string?[] _tokens;              // id → byte-level token string
    private readonly HashSet<int> _specialIds;
    private readonly BpeModelFiles _files;

    /// <summary>One more than the largest id.</summary>
    public int VocabSize => _tokens.Length;

    /// <summary>The folder the tokenizer's files came from (copied beside a model that training writes).</summary>
    public string SourceDirectory { get; }
    public int EndOfTextId { get; }

    private Gpt2Tokenizer(BpeModelFiles files)
    {
        _files = files;
        SourceDirectory = files.Directory;
        _tokens = new string?[files.Vocabulary.Values.Max() + 1];
        foreach (var (tok, id) in files.Vocabulary) _tokens[id] = tok;
        _specialIds = [.. files.SpecialTokens.Values];
        EndOfTextId = files.Vocabulary.TryGetValue(EndOfText, out int eot) ? eot : -1;
        try
        {
            _bpe = BpeTokenizer.Create(new BpeOptions(files.Vocabulary)
            {
                Merges = files.Merges,
                SpecialTokens = files.SpecialTokens,
                PreTokenizer = Gpt2PreTokenizer.Create(files.SpecialTokens),
                ByteLevel = true,
            });
        }
        catch (Exception e)
            when (e is ArgumentException or InvalidOperationException or FormatException or KeyNotFoundException)
        {
            throw new ModelLoadException($"{files.Directory}: the tokenizer library refused these files: " +
                $"{e.Message.ReplaceLineEndings(" ")}", e);
        }
    }

    /// <summary>Loads vocab.json + merges.txt, or else tokenizer.json, from <paramref name="directory"/>.</summary>
    public static Gpt2Tokenizer Load(string directory) => new(BpeModelFiles.Read(directory));

    /// <summary>
    /// The tokenizer, from the first of: <paramref name="tokenizerDirectory"/>; the model folder's vocab.json +
    /// merges.txt; its tokenizer.json; the GPT-2 files bundled in weights/. Borrowing the bundled files is said
    /// through <paramref name="note"/> (except for the models shipped in weights/, which use them by design) and
    /// refused when the model's vocabulary (<paramref name="modelVocabSize"/>) is smaller than GPT-2's: its ids
    /// would reach past the embedding table.
    /// </summary>
    public static Gpt2Tokenizer ForModel(string? modelDirectory, string? tokenizerDirectory, int? modelVocabSize = null,
        Action<string>? note = null)
    {
        if (tokenizerDirectory is not null)
        {
            if (!Directory.Exists(tokenizerDirectory))
                throw new ModelLoadException($"{tokenizerDirectory}: tokenizer folder not found");
            return Load(tokenizerDirectory);
        }
        if (modelDirectory is not null && BpeModelFiles.ExistIn(modelDirectory))
            return Load(modelDirectory);
        var bundled = Load(ModelFolder.BundledWeightsDirectory);
        if (modelDirectory is null || ModelFolder.IsBundled(modelDirectory)) return bundled;
        if (modelVocabSize is int v && v < bundled.VocabSize)
            throw new ModelLoadException($"{modelDirectory}: no vocab.json + merges.txt or tokenizer.json, and its " +
                $"vocab_size {v} is " +
                $"smaller than the bundled GPT-2 tokenizer's {bundled.VocabSize}: give the model's tokenizer with " +
                "--tokenizer DIR");
        note?.Invoke($"{modelDirectory} has no vocab.json + merges.txt or tokenizer.json: using the bundled GPT-2 " +
            "tokenizer");
        return bundled;
    }

    public int[] Encode(string text)
    {
        // A lone surrogate has no UTF-8 form; like Encoding.UTF8 (and unlike the library's byte conversion, which
        // writes three bytes that decode to three U+FFFD), it becomes one U+FFFD.
        if (text.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0)
            text = Encoding.UTF8.GetString(Encoding.UTF8.GetBytes(text));
        return [.. _bpe.EncodeToIds(text)];
    }

    /// <summary>Decodes ids to text. With <paramref name="cleanUpSpaces"/> (transformers' default) " ." → "."
    /// etc.</summary>
    public string Decode(IEnumerable<int> ids, bool cleanUpSpaces = true, bool skipSpecialTokens = false)
    {
        var list = ids as IReadOnlyCollection<int> ?? ids.ToList();
        foreach (int id in list) IdToToken(id);   // one clear error for an id outside the vocabulary
        string text = _bpe.Decode(list, considerSpecialTokens: !skipSpecialTokens);
        return cleanUpSpaces ? CleanUpTokenizationSpaces(text) : text;
    }

    /// <summary>The byte-level token strings ('Ġthe', 'Ċ'), as convert_ids_to_tokens gives them.</summary>
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) => ids.Select(IdToToken).ToArray();

    public string IdToToken(int id) =>
        id >= 0 && id < _tokens.Length && _tokens[id] is { } t ? t
            : throw new ArgumentOutOfRangeException(nameof(id),
            $"token id {id} is outside the vocabulary (0..{_tokens.Length - 1})");

    public bool TryGetId(string token, out int id) => _bpe.Vocabulary.TryGetValue(token, out id);

    public bool IsSpecial(int id) => _specialIds.Contains(id);

    /// <summary>The bytes a token stands for: its byte characters mapped back, or a special token's UTF-8
    /// text.</summary>
    public byte[] TokenBytes(int id)
    {
        string token = IdToToken(id);
        if (IsSpecial(id)) return Encoding.UTF8.GetBytes(token);
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
            bytes[i] = ByteLevelAlphabet.TryGetByte(token[i], out byte b) ? b
                : throw new ArgumentOutOfRangeException(nameof(id),
                $"token {id} '{token}' is not made of byte characters");
        return bytes;
    }

    /// <summary>The vocabulary as a GGUF file stores it, padded to the model's <paramref name="vocabSize"/> with
    /// unused "[PAD{id}]" entries (as llama.cpp's converter pads it).</summary>
    public GgufVocabulary ToGguf(int vocabSize)
    {
        if (vocabSize < VocabSize)
            throw new ArgumentException($"the model's vocab_size {vocabSize} is smaller than the tokenizer's " +
                $"{VocabSize}");
        var tokens = new string[vocabSize];
        var types = new int[vocabSize];
        for (int id = 0; id < vocabSize; id++)
        {
            string? t = id < _tokens.Length ? _tokens[id] : null;
            tokens[id] = t ?? $"[PAD{id}]";
            types[id] = t is null ? GgufVocabulary.Unused : IsSpecial(id) ? GgufVocabulary.Control
                : GgufVocabulary.Normal;
        }
        int? eot = EndOfTextId >= 0 ? EndOfTextId : null;
        return new GgufVocabulary(tokens, types, [.. _files.Merges], eot, eot);
    }

    /// <summary>transformers' clean_up_tokenization: removes the space before punctuation and English
    /// contractions.</summary>
    public static string CleanUpTokenizationSpaces(string text) => text
        .Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",")
        .Replace(" ' ", "'").Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s")
        .Replace(" 've", "'ve").Replace(" 're", "'re");
}
