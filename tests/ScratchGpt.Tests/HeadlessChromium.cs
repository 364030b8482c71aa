using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>
/// Headless Chromium driven over the DevTools protocol (a WebSocket of JSON commands), so a test can
/// load a page, run script, send real mouse events and take screenshots. Needs the Debian package
/// `chromium` (.ci/run installs it); without it the tests fail rather than skip.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    private readonly Process _process;
    private readonly string _profile;
    private readonly ClientWebSocket _socket = new();
    private int _nextId;

    private HeadlessChromium(Process process, string profile) { _process = process; _profile = profile; }

    public static string? FindExecutable() =>
        new[] { "chromium", "chromium-browser", "google-chrome" }
            .SelectMany(n => (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':')
            .Select(d => Path.Combine(d, n)))
            .FirstOrDefault(File.Exists);

    public static async Task<HeadlessChromium> StartAsync(int width = 1280, int height = 900)
    {
        string exe = FindExecutable()
            ?? throw new InvalidOperationException("chromium not found on PATH: install the Debian package " +
            "'chromium' (.ci/run does)");
        string profile = Directory.CreateTempSubdirectory("sgpt-chrome").FullName;
        var psi = new ProcessStartInfo(exe)
        {
            RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-port=0",
            $"--user-data-dir={profile}",
                     $"--window-size={width},{height}", "--no-first-run", "--disable-extensions", "about:blank" })
            psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.BeginErrorReadLine(); p.BeginOutputReadLine();
        var chrome = new HeadlessChromium(p, profile);
        string portFile = Path.Combine(profile, "DevToolsActivePort");
        var clock = Stopwatch.StartNew();
        while (!File.Exists(portFile) || new FileInfo(portFile).Length == 0)
        {
            if (p.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
                throw new InvalidOperationException("chromium did not start its DevTools endpoint");
            await Task.Delay(100);
        }
        int port = int.Parse((await File.ReadAllLinesAsync(portFile))[0]);
        using var http = new HttpClient();
        var targets = JsonNode.Parse(await http.GetStringAsync($"http://127.0.0.1:{port}/json/list"))!.AsArray();
        string ws = targets.First(t =>
            t!["type"]!.GetValue<string>() == "page")!["webSocketDebuggerUrl"]!.GetValue<string>();
        await chrome._socket.ConnectAsync(new Uri(ws), CancellationToken.None);
        return chrome;
    }

    /// <summary>Sends one DevTools command and returns its result (events in between are skipped).</summary>
    public async Task<JsonNode> SendAsync(string method, JsonObject? parameters = null)
    {
        int id = ++_nextId;
        var msg = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters ?? new JsonObject() };
        await _socket.SendAsync(Encoding.UTF8.GetBytes(msg.ToJsonString()), WebSocketMessageType.Text, true,
            CancellationToken.None);
        var buffer = new byte[1 << 16];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (true)
        {
            using var ms = new MemoryStream();
            WebSocketReceiveResult r;
            do
            {
                r = await _socket.ReceiveAsync(buffer, timeout.Token);
                ms.Write(buffer, 0, r.Count);
            } while (!r.EndOfMessage);
            var reply = JsonNode.Parse(ms.ToArray())!;
            if (reply["id"]?.GetValue<int>() != id) continue;
            if (reply["error"] is { } e) throw new InvalidOperationException($"{method}: {e.ToJsonString()}");
            return reply["result"]!;
        }
    }

    public async Task NavigateAsync(string url)
    {
        await SendAsync("Page.enable");
        await SendAsync("Page.navigate", new JsonObject { ["url"] = url });
        for (int i = 0; i < 300 && await EvaluateAsync<string>("document.readyState") != "complete"; i++)
            await Task.Delay(50);
    }

    public async Task<T> EvaluateAsync<T>(string expression)
    {
        var r = await SendAsync("Runtime.evaluate",
            new JsonObject { ["expression"] = expression, ["returnByValue"] = true });
        if (r["exceptionDetails"] is { } ex) throw new InvalidOperationException($"script failed: {ex.ToJsonString()}");
        return r["result"]!["value"]!.GetValue<T>();
    }

    public async Task<JsonNode> EvaluateJsonAsync(string expression) =>
        JsonNode.Parse(await EvaluateAsync<string>($"JSON.stringify({expression})"))!;

    /// <summary>A real mouse click (press and release) at page coordinates.</summary>
    public async Task ClickAsync(double x, double y)
    {
        foreach (string type in new[] { "mouseMoved", "mousePressed", "mouseReleased" })
            await SendAsync("Input.dispatchMouseEvent",
                new JsonObject { ["type"] = type, ["x"] = x, ["y"] = y, ["button"] = "left", ["clickCount"] = 1 });
    }

    public async Task MoveMouseAsync(double x, double y) =>
        await SendAsync("Input.dispatchMouseEvent", new JsonObject { ["type"] = "mouseMoved", ["x"] = x, ["y"] = y });

    public async Task<byte[]> ScreenshotAsync() =>
        Convert.FromBase64String(
            (await SendAsync("Page.captureScreenshot",
            new JsonObject { ["format"] = "png" }))["data"]!.GetValue<string>());

    public async ValueTask DisposeAsync()
    {
        try { _socket.Dispose(); } catch { }
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        catch { }
        _process.Dispose();
        try { Directory.Delete(_profile, true); } catch { }
    }
}
