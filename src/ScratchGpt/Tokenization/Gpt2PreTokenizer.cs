using System.Text;
using System.Text.RegularExpressions;
using Microsoft.ML.Tokenizers;

namespace ScratchGpt.Tokenization;

/// <summary>
/// GPT-2's pre-split, the regex
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// (contractions, then an optional space and a run of letters, digits or other symbols, then whitespace;
/// a whitespace run before a word leaves its last space to the word, so " the" stays one piece).
///
/// Python's regex module matches code points; .NET's matches UTF-16 units, where a letter outside the
/// Basic Multilingual Plane ('𝔘', U+1D518) is two surrogates of category Cs and would fall into the
/// "other symbols" class. So \p{L} and \p{N} are widened with the surrogate pairs of the letters and
/// digits of planes 1–16, read from .NET's own Unicode tables when the pattern is built.
/// </summary>
public static class Gpt2PreTokenizer
{
    public static PreTokenizer Create(IReadOnlyDictionary<string, int> specialTokens) =>
        new RegexPreTokenizer(Pattern, specialTokens);

    private static readonly Regex Pattern = Build();

    private static Regex Build()
    {
        string letter = $@"(?:\p{{L}}|{SupplementaryPairs(Rune.IsLetter)})";
        string number = $@"(?:\p{{N}}|{SupplementaryPairs(Rune.IsNumber)})";
        string other = $@"(?:(?!{letter}|{number})[^\s\p{{L}}\p{{N}}][\uDC00-\uDFFF]?)";   // keeps a pair whole
        string pattern = $@"'s|'t|'re|'ve|'m|'ll|'d| ?{letter}+| ?{number}+| ?{other}+|\s+(?!\S)|\s+";
        return new Regex(pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);
    }

    /// <summary>An alternation of "high surrogate, low-surrogate class" for the code points above U+FFFF that
    /// <paramref name="include"/> accepts, consecutive high surrogates with the same low class merged.</summary>
    private static string SupplementaryPairs(Func<Rune, bool> include)
    {
        var groups = new List<(int FirstHigh, int LastHigh, string Lows)>();
        for (int high = 0xD800; high <= 0xDBFF; high++)
        {
            string lows = LowClass(high, include);
            if (lows.Length == 0) continue;
            if (groups.Count > 0 && groups[^1].LastHigh == high - 1 && groups[^1].Lows == lows)
                groups[^1] = (groups[^1].FirstHigh, high, lows);
            else groups.Add((high, high, lows));
        }
        var sb = new StringBuilder("(?:");
        foreach (var (first, last, lows) in groups)
        {
            if (sb.Length > 3) sb.Append('|');
            sb.Append(first == last ? U(first) : $"[{U(first)}-{U(last)}]").Append('[').Append(lows).Append(']');
        }
        return sb.Append(')').ToString();
    }

    private static string LowClass(int high, Func<Rune, bool> include)
    {
        var sb = new StringBuilder();
        int runStart = -1;
        for (int low = 0xDC00; low <= 0xE000; low++)
        {
            bool inside = low < 0xE000 && include(new Rune((char)high, (char)low));
            if (inside && runStart < 0) runStart = low;
            if (!inside && runStart >= 0)
            {
                sb.Append(U(runStart));
                if (low - 1 > runStart) sb.Append('-').Append(U(low - 1));
                runStart = -1;
            }
        }
        return sb.ToString();
    }

    private static string U(int unit) => $@"\u{unit:X4}";
}
