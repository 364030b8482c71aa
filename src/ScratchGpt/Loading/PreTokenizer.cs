using System.Text;

namespace ScratchGpt.Loading;

/// <summary>
/// GPT-2's pre-split, written out by hand instead of as a regex (so that it works on code points,
/// not UTF-16 units). It is the regex
///     's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
/// tried alternative by alternative at each position: contractions, an optional space and a run of
/// letters / digits / other symbols, then whitespace. A whitespace run followed by a word keeps its
/// last space for the word, so " the" stays one piece.
/// </summary>
public static class PreTokenizer
{
    private static readonly string[] Contractions = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"];

    private enum Kind { Letter, Number, Space, Other }

    private static Kind Classify(Rune r)
    {
        if (Rune.IsLetter(r)) return Kind.Letter;
        if (Rune.IsNumber(r)) return Kind.Number;
        if (Rune.IsWhiteSpace(r)) return Kind.Space;
        return Kind.Other;
    }

    /// <summary>Splits <paramref name="text"/> into pieces; their concatenation is the input.</summary>
    public static IEnumerable<string> Split(string text)
    {
        // Decode once into runes (lone surrogates become U+FFFD, as UTF-8 encoding would).
        var runes = new List<Rune>(text.Length);
        foreach (var r in text.EnumerateRunes()) runes.Add(r);
        var kinds = runes.Select(Classify).ToArray();
        int n = runes.Count, i = 0;
        var sb = new StringBuilder();

        string Take(int from, int to)
        {
            sb.Clear();
            for (int k = from; k < to; k++) sb.Append(runes[k].ToString());
            return sb.ToString();
        }

        while (i < n)
        {
            // 1. contractions ('s, 't, 're, 've, 'm, 'll, 'd), lowercase only, as in GPT-2.
            if (runes[i].Value == '\'')
            {
                string? hit = null;
                foreach (var c in Contractions)
                {
                    if (i + c.Length > n) continue;
                    bool ok = true;
                    for (int k = 1; k < c.Length && ok; k++) ok = runes[i + k].Value == c[k];
                    if (ok) { hit = c; break; }
                }
                if (hit is not null) { yield return hit; i += hit.Length; continue; }
            }

            // 2-4. an optional single space, then a run of one class (letters, numbers or other symbols).
            int start = i, j = i;
            if (runes[j].Value == ' ' && j + 1 < n && kinds[j + 1] != Kind.Space) j++;
            if (kinds[j] != Kind.Space)
            {
                var kind = kinds[j];
                while (j < n && kinds[j] == kind) j++;
                yield return Take(start, j);
                i = j;
                continue;
            }

            // 5-6. whitespace: \s+(?!\S) leaves the last space to the following word; else \s+.
            j = i;
            while (j < n && kinds[j] == Kind.Space) j++;
            if (j < n && j - i > 1) j--;   // backtrack one so the match is followed by whitespace
            yield return Take(i, j);
            i = j;
        }
    }
}
