using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;

namespace ScratchGpt.Inspection;

/// <summary>
/// Writes the bertviz-style attention viewer: one self-contained HTML file (attention_viewer.html,
/// embedded in the library) with the tokens and every layer × head attention matrix inlined as JSON.
/// </summary>
public static class AttentionViewer
{
    /// <param name="tokens">The tokens as convert_ids_to_tokens writes them.</param>
    /// <param name="attentions">[layers][heads, T, T], as <see cref="Model.ForwardResult.Attentions"/>.</param>
    public static string Render(string title, IReadOnlyList<string> tokens, float[][] attentions, int heads)
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
        json.Append("]}");
        // "</" cannot appear inside a <script> block; JSON allows it escaped as "<\/".
        string data = json.ToString().Replace("</", "<\\/");
        // One pass over the template, so a title or token that happens to contain a marker is left alone.
        return System.Text.RegularExpressions.Regex.Replace(Template(), "__(TITLE|DATA)__",
            m => m.Groups[1].Value == "TITLE" ? WebUtility.HtmlEncode(title) : data);
    }

    private static string Template()
    {
        using var s = typeof(AttentionViewer).Assembly.GetManifestResourceStream("ScratchGpt.Inspection.attention_viewer.html")
            ?? throw new InvalidOperationException("attention_viewer.html is missing from the assembly");
        return new StreamReader(s).ReadToEnd();
    }
}
