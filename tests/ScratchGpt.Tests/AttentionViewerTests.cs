using System.Buffers.Binary;
using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>The HTML attention viewer: self-contained, and usable in a real (headless) browser.</summary>
[Collection("console")]
public sealed class AttentionViewerTests : IDisposable
{
    private const string Prompt = "ROMEO: But soft, what light";
    private readonly string _dir = Directory.CreateTempSubdirectory("sgpt-html").FullName;
    private string HtmlPath => Path.Combine(_dir, "attention.html");

    public AttentionViewerTests()
    {
        var (code, _, err) = CliTests.RunCli("attention", "--model", Fixtures.Model("tiny-gpt2"), "--tokenizer",
        Fixtures.TokenizerDir,
            "--device", "cpu", "--prompt", Prompt, "--html", HtmlPath);
        Assert.True(code == 0, err);
    }

    public void Dispose() => Directory.Delete(_dir, true);

    private static string[] Tokens => Fixtures.Tokenizer.ConvertIdsToTokens(Fixtures.Tokenizer.Encode(Prompt));

    [Fact]
    public void Html_is_self_contained_and_carries_the_models_attentions()
    {
        string html = File.ReadAllText(HtmlPath);
        Assert.DoesNotContain("http://", html.Replace("http://www.w3.org/2000/svg", ""));
        Assert.DoesNotContain("https://", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain(" src=", html);
        // The inlined data equals the model's attentions (rounded to 4 decimals).
        string json = html.Split("<script id=\"data\" type=\"application/json\">")[1].Split("</script>")[0];
        var data = JsonNode.Parse(json)!;
        Assert.Equal(Tokens, data["tokens"]!.AsArray().Select(t => t!.GetValue<string>()));
        var model = Fixtures.Load("tiny-gpt2");
        int[] ids = Fixtures.Tokenizer.Encode(Prompt);
        var attn = model.Forward(ids, new Model.ForwardOptions { Attentions = true }).Attentions!;
        for (int l = 0; l < 2; l++)
            for (int h = 0; h < 4; h++)
            {
                var a = data["attn"]![l]![h]!.AsArray().Select(v => v!.GetValue<double>()).ToArray();
                for (int i = 0; i < a.Length; i++) Assert.Equal(attn[l][h * a.Length + i], a[i], 5e-5);
            }
        // The lens: embeddings + 2 blocks; its last row is the model's own top prediction at every position.
        var lens = data["lens"]!;
        Assert.Equal(["embed", "block 0", "block 1"], lens["rows"]!.AsArray().Select(r => r!.GetValue<string>()));
        var logits = model.Forward(ids).Logits;
        int V = model.VocabSize;
        var predicted = Enumerable.Range(0, ids.Length).Select(t => Decoding.TokenMath.Argmax(logits.AsSpan(t * V, V)));
        Assert.Equal(predicted, lens["top_ids"]![2]!.AsArray().Select(x => x!.GetValue<int>()));
        Assert.Equal(ids.Length, lens["tokens"]![0]!.AsArray().Count);
    }

    [Fact]
    public async Task Viewer_renders_in_headless_chromium_and_a_click_changes_the_view()
    {
        await using var chrome = await HeadlessChromium.StartAsync();
        await chrome.NavigateAsync(new Uri(HtmlPath).AbsoluteUri);

        // Model view: a 2 × 4 grid of drawn heat maps.
        Assert.Equal(8, await chrome.EvaluateAsync<int>("document.querySelectorAll('#grid canvas.cell').length"));
        Assert.True(
            await chrome.EvaluateAsync<bool>("[...document.querySelectorAll('canvas.cell')].every(c => c.width > 0 " +
            "&& c.getBoundingClientRect().width > 0)"));
        // Head view: the tokens on both sides.
        var left = (
            await chrome.EvaluateJsonAsync("[...document.querySelectorAll('.token-left')].map(e => e.textContent)"))
            .AsArray();
        Assert.Equal(Tokens, left.Select(t => t!.GetValue<string>()));

        // A real click on layer 1, head 2 enlarges it and selects it for the head view.
        Assert.Equal("Click a head to enlarge it.",
            await chrome.EvaluateAsync<string>("document.getElementById('detail-title').textContent"));
        var rect = await chrome.EvaluateJsonAsync("(r => ({x: r.x + r.width / 2, y: r.y + r.height / " +
            "2}))(document.getElementById('cell-1-2').getBoundingClientRect())");
        await chrome.ClickAsync(rect["x"]!.GetValue<double>(), rect["y"]!.GetValue<double>());
        Assert.Equal("Layer 1, head 2",
            await chrome.EvaluateAsync<string>("document.getElementById('detail-title').textContent"));
        Assert.True(await chrome.EvaluateAsync<bool>("document.getElementById('detail-canvas').width > 100"));
        Assert.Equal("1", await chrome.EvaluateAsync<string>("document.getElementById('layer').value"));
        Assert.True(
            await chrome.EvaluateAsync<bool>("document.getElementById('head-2').checked && " +
            "!document.getElementById('head-0').checked"));

        // Head view: hovering the last token keeps only its lines.
        var tab = await chrome.EvaluateJsonAsync("(r => ({x: r.x + r.width / 2, y: r.y + r.height / " +
            "2}))(document.getElementById('tab-head').getBoundingClientRect())");
        await chrome.ClickAsync(tab["x"]!.GetValue<double>(), tab["y"]!.GetValue<double>());
        int allLines = await chrome.EvaluateAsync<int>("document.querySelectorAll('#lines line').length");
        var tok = await chrome.EvaluateJsonAsync("(r => ({x: r.x + r.width / 2, y: r.y + r.height / " +
            "2}))([...document.querySelectorAll('.token-left')].at(-1).getBoundingClientRect())");
        await chrome.MoveMouseAsync(tok["x"]!.GetValue<double>(), tok["y"]!.GetValue<double>());
        int focused = await chrome.EvaluateAsync<int>("document.querySelectorAll('#lines line').length");
        Assert.InRange(focused, 1, allLines - 1);

        // The lens tab: a header row and one row per layer, a cell per position, shaded by probability.
        tab = await chrome.EvaluateJsonAsync("(r => ({x: r.x + r.width / 2, y: r.y + r.height / " +
            "2}))(document.getElementById('tab-lens').getBoundingClientRect())");
        await chrome.ClickAsync(tab["x"]!.GetValue<double>(), tab["y"]!.GetValue<double>());
        Assert.True(
            await chrome.EvaluateAsync<bool>("document.getElementById('lens-view').classList.contains('active')"));
        Assert.Equal(4, await chrome.EvaluateAsync<int>("document.querySelectorAll('#lens-table tr').length"));
        Assert.Equal(3 * Tokens.Length,
            await chrome.EvaluateAsync<int>("document.querySelectorAll('#lens-table td').length"));
        Assert.True(
            await chrome.EvaluateAsync<bool>("[...document.querySelectorAll('#lens-table td')].some(td => " +
            "td.style.background.startsWith('rgba'))"));

        // Screenshot of the model view: a real PNG of the window's size with more than one colour.
        await chrome.ClickAsync(0, 0);
        var png = await ScreenshotOfModelView(chrome);
        Assert.True(png.AsSpan(0, 8).SequenceEqual(new byte[] { 137, 80, 78, 71, 13, 10, 26, 10 }), "PNG signature");
        Assert.Equal(1280, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16, 4)));
        Assert.True(png.Length > 10_000, $"screenshot is only {png.Length} bytes: blank page?");
        if (Environment.GetEnvironmentVariable("SCRATCHGPT_SCREENSHOT") is { Length: > 0 } keep)
            File.WriteAllBytes(keep, png);
    }

    private static async Task<byte[]> ScreenshotOfModelView(HeadlessChromium chrome)
    {
        var tab = await chrome.EvaluateJsonAsync("(r => ({x: r.x + r.width / 2, y: r.y + r.height / " +
            "2}))(document.getElementById('tab-model').getBoundingClientRect())");
        await chrome.ClickAsync(tab["x"]!.GetValue<double>(), tab["y"]!.GetValue<double>());
        return await chrome.ScreenshotAsync();
    }
}
