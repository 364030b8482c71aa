using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;

namespace ScratchGpt.Loading.Hub;

/// <summary>
/// Downloads a model's files from the Hub (or a mirror) into a cache laid out as huggingface_hub lays it out:
///
///     CACHE/models--org--name/blobs/ETAG                 the file's bytes, named by its hash
///     CACHE/models--org--name/snapshots/COMMIT/FILE      a link to the blob
///     CACHE/models--org--name/refs/REVISION              the commit the revision pointed to
///
/// Each file URL is ENDPOINT/ID/resolve/REVISION/FILE. Its first response (redirects are followed by
/// hand) carries X-Repo-Commit and the ETag — for large (LFS) files X-Linked-Etag, the SHA-256 of the
/// content, which the download is checked against. Partial downloads stay as BLOB.incomplete and are
/// resumed with a Range request.
/// </summary>
public sealed class HubDownloader : IDisposable
{
    /// <summary>Files a GPT-2 folder needs or can use; the first weights file found is the one taken.</summary>
    public static readonly string[] RequiredFiles = ["config.json"];
    public static readonly string[] OptionalFiles = ["generation_config.json", "vocab.json", "merges.txt",
        "tokenizer.json", "tokenizer_config.json"];
    public static readonly string[] WeightFiles = ["model.safetensors", "pytorch_model.bin"];

    private readonly HubSettings _settings;
    private readonly HttpClient _http;

    public HubDownloader(HubSettings settings, HttpMessageHandler? handler = null)
    {
        _settings = settings;
        _http = new HttpClient(handler
            ?? new SocketsHttpHandler { AllowAutoRedirect = false, ConnectTimeout = TimeSpan.FromSeconds(20) })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _http.DefaultRequestHeaders.UserAgent.ParseAdd("scratchgpt/1.0");
    }

    public string RepoCacheDirectory(string id) =>
        Path.Combine(_settings.CacheDirectory, HubModelId.CacheFolderName(id));

    /// <summary>The snapshot folder of a model at a revision, downloading what is missing (or, offline,
    /// only looking in the cache).</summary>
    public async Task<string> EnsureModelAsync(string id, string revision = "main",
        IProgress<DownloadProgress>? progress = null, CancellationToken cancel = default)
    {
        HubModelId.Validate(id);
        HubModelId.ValidateRevision(revision);
        if (_settings.Offline) return CachedSnapshot(id, revision)
            ?? throw new HubException($"{id}@{revision} is not in the cache {_settings.CacheDirectory} and offline " +
            "mode is on (HF_HUB_OFFLINE / --offline)");
        string? commit = null;
        foreach (string f in RequiredFiles)
            commit = await DownloadFileAsync(id, revision, f, required: true, progress, cancel) ?? commit;
        foreach (string f in OptionalFiles) await DownloadFileAsync(id, revision, f, required: false, progress, cancel);
        bool gotWeights = false;
        foreach (string f in WeightFiles)
            if (await DownloadFileAsync(id, revision, f, required: false, progress, cancel) is not null)
            {
                gotWeights = true;
                break;
            }
        if (!gotWeights) throw new HubException($"{id}@{revision} has neither model.safetensors nor pytorch_model.bin");
        return Path.Combine(RepoCacheDirectory(id), "snapshots", commit!);
    }

    /// <summary>The cached snapshot for a revision (a commit hash, or a branch/tag through refs/), or null.</summary>
    public string? CachedSnapshot(string id, string revision)
    {
        string repo = RepoCacheDirectory(id);
        string refFile = Path.Combine(repo, "refs", revision);
        string commit = File.Exists(refFile) ? File.ReadAllText(refFile).Trim() : revision;
        string snapshot = Path.Combine(repo, "snapshots", commit);
        return File.Exists(Path.Combine(snapshot, "config.json")) ? snapshot : null;
    }

    /// <summary>Downloads one file into the cache; returns the commit it belongs to, or null when an optional file does
    /// not exist.</summary>
    public async Task<string?> DownloadFileAsync(string id, string revision, string file, bool required,
        IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        string url = $"{_settings.Endpoint}/{id}/resolve/{Uri.EscapeDataString(revision)}/{file}";
        // 1. Metadata: HEAD the resolve URL without following the redirect, to read the commit and hash headers.
        using var head = await SendAsync(HttpMethod.Head, url, null, cancel);
        if (head.StatusCode == HttpStatusCode.NotFound && !required) return null;
        CheckStatus(head, id, revision, file);
        string commit = Header(head, "X-Repo-Commit")
            ?? throw new HubException($"{url}: the server sent no X-Repo-Commit header: not a Hugging Face Hub " +
            "endpoint?");
        if (!IsSafeName(commit)) throw new HubException($"{url}: X-Repo-Commit '{commit}' is not a commit hash");
        string etag = (Header(head, "X-Linked-Etag") ?? head.Headers.ETag?.Tag
            ?? throw new HubException($"{url}: the server sent no ETag")).Trim('"').Replace("W/", "");
        if (!IsSafeName(etag)) throw new HubException($"{url}: ETag '{etag}' is not a plain hash");
        long? size = long.TryParse(Header(head, "X-Linked-Size"), out long ls) ? ls
            : head.Content.Headers.ContentLength;
        string? location = head.Headers.Location is { } loc ? new Uri(new Uri(url), loc).ToString() : null;

        string repo = RepoCacheDirectory(id);
        string blob = Path.Combine(repo, "blobs", etag);
        string snapshotFile = Path.Combine(repo, "snapshots", commit, file);
        Directory.CreateDirectory(Path.GetDirectoryName(blob)!);
        Directory.CreateDirectory(Path.GetDirectoryName(snapshotFile)!);
        if (!File.Exists(blob)) await DownloadBlobAsync(location ?? url, blob, etag, size, file, progress, cancel);
        LinkOrCopy(blob, snapshotFile);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        if (revision != commit && !revision.Contains('/'))
            AtomicFile.WriteAllText(Path.Combine(repo, "refs", revision), commit);
        return commit;
    }

    private async Task DownloadBlobAsync(string url, string blob, string etag, long? size, string file,
        IProgress<DownloadProgress>? progress, CancellationToken cancel)
    {
        string partial = blob + ".incomplete";
        long have = File.Exists(partial) ? new FileInfo(partial).Length : 0;
        if (size is { } s && have > s) { File.Delete(partial); have = 0; }
        var headers = have > 0 ? new RangeHeaderValue(have, null) : null;
        using var response = await SendAsync(HttpMethod.Get, url, headers, cancel, followRedirects: true);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
        {
            File.Delete(partial);
            throw new HubException($"{file}: the server refused to resume; run the command again to start over");
        }
        CheckStatus(response, url, "", file);
        bool resumed = have > 0 && response.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) have = 0;
        var clock = Stopwatch.StartNew();
        long got = have;
        try
        {
            await using (var output = new FileStream(partial, resumed ? FileMode.Append : FileMode.Create,
                FileAccess.Write, FileShare.None, 1 << 16))
            await using (var input = await response.Content.ReadAsStreamAsync(cancel))
            {
                var buffer = new byte[1 << 16];
                int n;
                long lastReport = 0;
                while ((n = await input.ReadAsync(buffer, cancel)) > 0)
                {
                    await output.WriteAsync(buffer.AsMemory(0, n), cancel);
                    got += n;
                    if (got - lastReport >= 1 << 20 || got == size)
                    {
                        lastReport = got;
                        progress?.Report(
                            new DownloadProgress(file, got, size,
                            (got - have) / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
                    }
                }
            }
        }
        catch (Exception e) when (e is HttpRequestException or IOException && !cancel.IsCancellationRequested)
        {
            throw new HubException($"{file}: download interrupted after {got:N0} bytes ({e.Message}); run the " +
                "command again to resume");
        }
        if (size is { } expected && got != expected)
            throw new HubException($"{file}: download ended after {got:N0} of {expected:N0} bytes; run the command " +
                "again to resume");
        // LFS files are named by their SHA-256: check the bytes against it.
        if (etag.Length == 64 && etag.All(Uri.IsHexDigit))
        {
            string actual;
            await using (var f = File.OpenRead(partial))
                actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(f, cancel));
            if (actual != etag.ToLowerInvariant())
            {
                File.Delete(partial);
                throw new HubException($"{file}: SHA-256 {actual} does not match the Hub's {etag}; the corrupt " +
                    "download was deleted");
            }
        }
        progress?.Report(
            new DownloadProgress(file, got, size ?? got, (got - have) / Math.Max(1e-3, clock.Elapsed.TotalSeconds)));
        File.Move(partial, blob, overwrite: true);
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, string url, RangeHeaderValue? range,
        CancellationToken cancel, bool followRedirects = false)
    {
        for (int hops = 0; ; hops++)
        {
            var request = new HttpRequestMessage(method, url);
            if (range is not null) request.Headers.Range = range;
            // The token goes only to the endpoint itself, never to the CDN a redirect points at.
            if (_settings.Token is not null && url.StartsWith(_settings.Endpoint + "/", StringComparison.Ordinal))
                request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _settings.Token);
            HttpResponseMessage response;
            try { response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, cancel); }
            catch (HttpRequestException e)
            {
                throw new HubException($"cannot reach {new Uri(url).GetLeftPart(UriPartial.Authority)}: {e.Message} " +
                    "(use --offline to work from the cache)");
            }
            int code = (int)response.StatusCode;
            if (code is >= 300 and < 400 && response.Headers.Location is { } loc
                && (followRedirects || loc.IsAbsoluteUri is false && IsRelativeRename(code)))
            {
                if (hops >= 5) throw new HubException($"{url}: too many redirects");
                url = new Uri(new Uri(url), loc).ToString();
                response.Dispose();
                continue;
            }
            return response;
        }
    }

    /// <summary>A relative 307 is the Hub renaming a repository; those are followed even for metadata.</summary>
    private static bool IsRelativeRename(int code) => code == 307;

    private static void CheckStatus(HttpResponseMessage r, string id, string revision, string file)
    {
        int code = (int)r.StatusCode;
        if (code is >= 200 and < 400) return;
        string what = revision.Length > 0 ? $"{id}@{revision}: {file}" : $"{file} ({id})";
        throw code switch
        {
            401 or 403 => new HubException($"{what}: {code} {r.ReasonPhrase}: the model is private or gated; " +
                "set HF_TOKEN to a token with access"),
            404 => new HubException($"{what}: 404 Not Found: no such model, revision or file"),
            _ => new HubException($"{what}: the server answered {code} {r.ReasonPhrase}"),
        };
    }

    private static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault()
        : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault()
        : null;

    private static bool IsSafeName(string s) =>
        s.Length is > 0 and <= 128 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');

    /// <summary>A relative symlink from the snapshot to the blob, as huggingface_hub makes; a copy where links are not
    /// allowed.</summary>
    private static void LinkOrCopy(string blob, string target)
    {
        if (File.Exists(target) || Directory.Exists(target)) File.Delete(target);
        try { File.CreateSymbolicLink(target, Path.GetRelativePath(Path.GetDirectoryName(target)!, blob)); }
        catch (IOException) { File.Copy(blob, target); }
        catch (UnauthorizedAccessException) { File.Copy(blob, target); }
    }

    public void Dispose() => _http.Dispose();
}
