using System.Text;

namespace ScratchGpt.Tokenization;

/// <summary>
/// Decodes ids as they arrive and hands back text as soon as it is final, so that the concatenation of
/// everything <see cref="Push"/> and <see cref="Flush"/> return equals <c>Decode(all ids)</c> with clean-up.
/// Two things hold text back: a UTF-8 character split over tokens (its bytes wait for the rest), and
/// transformers' clean-up, whose patterns (" .", " n't", " ' " …) may span tokens. Text is released up to
/// a cut where no pattern can span: letter/digit, space, letter/digit other than 'n' (the space can't be
/// removed and no pattern contains "x " with x a letter), or after a newline (no pattern holds one).
/// Each id costs its own bytes plus the held-back text since the last cut: O(new bytes) for ordinary text.
/// </summary>
public sealed class StreamingDetokenizer(Gpt2Tokenizer tokenizer, bool cleanUpSpaces = true)
{
    private readonly Decoder _utf8 = new UTF8Encoding(false, false).GetDecoder();
    private readonly StringBuilder _pending = new();
    private char[] _chars = new char[64];

    /// <summary>Adds one id; returns the text that is now final (often empty while a word is incomplete).</summary>
    public string Push(int id)
    {
        byte[] bytes = tokenizer.TokenBytes(id);
        Append(bytes, flush: false);
        return Release(final: false);
    }

    /// <summary>Ends the stream: an incomplete character becomes U+FFFD, all held-back text comes out.</summary>
    public string Flush()
    {
        Append([], flush: true);
        return Release(final: true);
    }

    private void Append(byte[] bytes, bool flush)
    {
        int need = _utf8.GetCharCount(bytes, flush);
        if (need > _chars.Length) _chars = new char[Math.Max(need, 2 * _chars.Length)];
        int n = _utf8.GetChars(bytes, 0, bytes.Length, _chars, 0, flush);
        _pending.Append(_chars, 0, n);
    }

    private string Release(bool final)
    {
        int cut = final || !cleanUpSpaces ? _pending.Length : LastSafeCut();
        if (cut <= 0) return "";
        string text = _pending.ToString(0, cut);
        _pending.Remove(0, cut);
        return cleanUpSpaces ? Gpt2Tokenizer.CleanUpTokenizationSpaces(text) : text;
    }

    private int LastSafeCut()
    {
        for (int i = _pending.Length - 1; i >= 1; i--)
        {
            if (_pending[i - 1] == '\n') return i;
            if (_pending[i - 1] == ' ' && i >= 2 && char.IsLetterOrDigit(_pending[i - 2])
                && char.IsLetterOrDigit(_pending[i]) && _pending[i] != 'n')
                return i - 1;
        }
        return 0;
    }
}
