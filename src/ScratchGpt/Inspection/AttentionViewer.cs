using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ScratchGpt.Inspection;

/// <summary>
/// Writes the bertviz-style attention viewer: one self-contained HTML file (attention_viewer.html,
/// embedded in the library) with the tokens and every layer × head attention matrix inlined as JSON, and, when
/// given, the logit lens (<see cref="LogitLens"/>) as a third tab: layers × positions, each cell the top token,
/// coloured by the probability that layer gives the model's final prediction.
/// </summary>
public static class AttentionViewer
{
    /// <param name="tokens">The tokens as convert_ids_to_tokens writes them.</param>
    /// <param name="attentions">[layers][heads, T, T], as <see cref="Model.ForwardResult.Attentions"/>.</param>
    /// <param name="lens">The logit lens of the same prompt, with <paramref name="lensTokens"/>[layer][position] the
    /// text of each cell's top token.</param>
    public static string Render(string title, IReadOnlyList<string> tokens, float[][] attentions, int heads,
        LogitLens.Result? lens = null, string[][]? lensTokens = null)
    {
        int T = tokens.Count;
        var json = new StringBuilder();
        json.Append("{\"tokens\":").Append(JsonSerializer.Serialize(tokens))
            .Append(",\"layers\":").Append(attentions.Length).Append(",\"heads\":").Append(heads).Append(",\"attn\":[");
        for (int l = 0; l < attentions.Length; l++)
        {
            json.Append(l > 0 ? ",[" : "[");
            for (int h = 0; h < heads; h++)
            {
                json.Append(h > 0 ? ",[" : "[");
                for (int i = 0; i < T * T; i++)
                {
                    if (i > 0) json.Append(',');
                    json.Append(Math.Round(attentions[l][h * T * T + i], 4).ToString(CultureInfo.InvariantCulture));
                }
                json.Append(']');
            }
            json.Append(']');
        }
        json.Append(']');
        if (lens is not null && lensTokens is not null)
        {
            static string Rows(IEnumerable<IEnumerable<double>> rows) =>
                "[" + string.Join(",",
                    rows.Select(r => "["
                    + string.Join(",", r.Select(v => Math.Round(v, 4).ToString(CultureInfo.InvariantCulture))) + "]"))
                    + "]";
            json.Append(",\"lens\":{\"rows\":").Append(JsonSerializer.Serialize(
                    Enumerable.Range(0, lens.TopIds.Length).Select(l => l == 0 ? "embed" : $"block {l - 1}")))
                .Append(",\"tokens\":").Append(JsonSerializer.Serialize(lensTokens))
                .Append(",\"top_ids\":").Append(JsonSerializer.Serialize(lens.TopIds.Select(l => l.Select(t => t[0]))))
                .Append(",\"top_probs\":").Append(Rows(lens.TopProbs.Select(l => l.Select(t => (double)t[0]))))
                .Append(",\"final_probs\":").Append(Rows(lens.FinalTokenProbs.Select(l => l.Select(v => (double)v))))
                .Append('}');
        }
        json.Append('}');
        // "</" cannot appear inside a <script> block; JSON allows it escaped as "<\/".
        string data = json.ToString().Replace("</", "<\\/");
        // One pass over the template, so a title or token that happens to contain a marker is left alone.
        return System.Text.RegularExpressions.Regex.Replace(Template(), "__(TITLE|DATA)__",
            m => m.Groups[1].Value == "TITLE" ? WebUtility.HtmlEncode(title) : data);
    }

    private static string Template()
    {
        using var s = typeof(AttentionViewer)
            .Assembly.GetManifestResourceStream("ScratchGpt.Inspection.attention_viewer.html")
            ?? throw new InvalidOperationException("attention_viewer.html is missing from the assembly");
        return new StreamReader(s).ReadToEnd();
    }
}
