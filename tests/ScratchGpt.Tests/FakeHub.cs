using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace ScratchGpt.Tests;

/// <summary>
/// A real HTTP server on 127.0.0.1 that serves fixture model folders in the Hub's URL scheme:
/// /ID/resolve/REV/FILE answers small files directly (ETag = a git-style hash) and large files with a
/// 302 to /cdn/SHA256 plus X-Linked-Etag / X-Linked-Size, as the Hub does for LFS files. The CDN
/// honours Range requests. Faults on demand: drop the connection halfway, corrupt the bytes, 401.
/// </summary>
public sealed class FakeHub : IDisposable
{
    public const string Commit = "7a1b2c3d4e5f60718293a4b5c6d7e8f901234567";
    public const string Token = "hf_test_token";
    private readonly HttpListener _listener = new();
    private readonly Dictionary<string, Dictionary<string, byte[]>> _repos = new();
    private readonly Dictionary<string, byte[]> _blobs = new();
    private readonly HashSet<string> _private = new();
    public string Endpoint { get; }
    public int CdnGets;
    public List<string> RangesSeen { get; } = [];
    /// <summary>When set, the next CDN download sends this many bytes and then drops the connection.</summary>
    public long? DropNextAfter;
    /// <summary>When set, CDN downloads flip one byte.</summary>
    public bool Corrupt;

    public FakeHub()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = $"http://127.0.0.1:{port}";
        _listener.Prefixes.Add(Endpoint + "/");
        _listener.Start();
        _ = Task.Run(Serve);
    }

    public void AddRepo(string id, string folder, bool isPrivate = false)
    {
        var files = Directory.GetFiles(folder).ToDictionary(f => Path.GetFileName(f), File.ReadAllBytes);
        _repos[id] = files;
        foreach (var b in files.Values) _blobs[Convert.ToHexStringLower(SHA256.HashData(b))] = b;
        if (isPrivate) _private.Add(id);
    }

    private static bool IsLarge(string file) => file.EndsWith(".safetensors") || file.EndsWith(".bin");

    private async Task Serve()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext ctx;
            try { ctx = await _listener.GetContextAsync(); } catch { return; }
            try { Handle(ctx); } catch { try { ctx.Response.Abort(); } catch { } }
        }
    }

    private void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request; var res = ctx.Response;
        string path = Uri.UnescapeDataString(req.Url!.AbsolutePath);
        if (path.StartsWith("/cdn/"))
        {
            if (!_blobs.TryGetValue(path[5..], out var blob)) { res.StatusCode = 404; res.Close(); return; }
            if (req.HttpMethod == "GET") Interlocked.Increment(ref CdnGets);
            long start = 0;
            if (req.Headers["Range"] is { } range)
            {
                RangesSeen.Add(range);
                start = long.Parse(range["bytes=".Length..].TrimEnd('-'));
                res.StatusCode = 206;
                res.Headers["Content-Range"] = $"bytes {start}-{blob.Length - 1}/{blob.Length}";
            }
            var body = blob.AsSpan((int)start).ToArray();
            if (Corrupt && body.Length > 100) body[body.Length / 2] ^= 0xFF;
            res.ContentLength64 = body.Length;
            if (req.HttpMethod == "HEAD") { res.Close(); return; }
            if (DropNextAfter is { } n)
            {
                DropNextAfter = null;
                res.OutputStream.Write(body, 0, (int)n);
                res.OutputStream.Flush();
                res.Abort();
                return;
            }
            res.OutputStream.Write(body);
            res.Close();
            return;
        }
        // /ID/resolve/REV/FILE with ID = name or org/name
        string[] parts = path.Trim('/').Split('/');
        int r = Array.IndexOf(parts, "resolve");
        if (r < 1 || parts.Length != r + 3) { res.StatusCode = 404; res.Close(); return; }
        string id = string.Join('/', parts[..r]), rev = parts[r + 1], file = parts[r + 2];
        if (_private.Contains(id) && req.Headers["Authorization"] != "Bearer " + Token)
        {
            res.StatusCode = 401;
            res.Close();
            return;
        }
        if (!_repos.TryGetValue(id, out var files) || rev is not ("main" or Commit)
            || !files.TryGetValue(file, out var content))
        {
            res.StatusCode = 404; res.Close(); return;
        }
        res.Headers["X-Repo-Commit"] = Commit;
        string sha = Convert.ToHexStringLower(SHA256.HashData(content));
        if (IsLarge(file))
        {
            res.StatusCode = 302;
            res.Headers["Location"] = $"{Endpoint}/cdn/{sha}";
            res.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            res.Headers["X-Linked-Size"] = content.Length.ToString();
            res.Close();
            return;
        }
        res.Headers["ETag"] = $"\"{Convert.ToHexStringLower(SHA1.HashData(content))}\"";
        res.ContentLength64 = content.Length;
        if (req.HttpMethod == "GET") res.OutputStream.Write(content);
        res.Close();
    }

    public void Dispose()
    {
        if (!_listener.IsListening) return;
        _listener.Stop();
        _listener.Close();
    }
}
