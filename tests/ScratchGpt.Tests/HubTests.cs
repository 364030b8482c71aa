using ScratchGpt.Loading;
using ScratchGpt.Loading.Hub;
using ScratchGpt.Model;

namespace ScratchGpt.Tests;

[Collection("console")]
public sealed class HubTests : IDisposable
{
    private readonly FakeHub _hub = new();
    private readonly string _cache = Directory.CreateTempSubdirectory("sgpt-hub").FullName;

    public HubTests()
    {
        _hub.AddRepo("fixtures/tiny-gpt2", Fixtures.Model("tiny-gpt2"));
        _hub.AddRepo("tiny-gpt2-bin", Fixtures.Model("tiny-gpt2-bin"));
        _hub.AddRepo("fixtures/private-gpt2", Fixtures.Model("tiny-gpt2"), isPrivate: true);
    }

    public void Dispose() { _hub.Dispose(); Directory.Delete(_cache, true); }

    private HubDownloader Client(bool offline = false, string? token = null) =>
        new(new HubSettings { Endpoint = _hub.Endpoint, CacheDirectory = _cache, Offline = offline, Token = token });

    private static float[] Logits(string dir)
    {
        using var m = Gpt2Model.Load(dir,
            new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir });
        return m.Forward([464, 2068, 7586]).Logits;
    }

    [Fact]
    public async Task Download_lays_out_the_cache_like_huggingface_hub_and_the_model_loads()
    {
        using var client = Client();
        string snapshot = await client.EnsureModelAsync("fixtures/tiny-gpt2");
        string repo = Path.Combine(_cache, "models--fixtures--tiny-gpt2");
        Assert.Equal(Path.Combine(repo, "snapshots", FakeHub.Commit), snapshot);
        Assert.Equal(FakeHub.Commit, File.ReadAllText(Path.Combine(repo, "refs", "main")));
        string sha = Convert.ToHexStringLower(
            System.Security.Cryptography.SHA256.HashData(
            File.ReadAllBytes(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors"))));
        Assert.True(File.Exists(Path.Combine(repo, "blobs", sha)), "the weights blob is named by its SHA-256");
        Assert.NotNull(new FileInfo(Path.Combine(snapshot, "model.safetensors")).LinkTarget);
        Assert.Equal(Logits(Fixtures.Model("tiny-gpt2")), Logits(snapshot));
    }

    [Fact]
    public async Task Second_download_reuses_the_cache_and_offline_mode_needs_no_server()
    {
        using (var client = Client()) await client.EnsureModelAsync("fixtures/tiny-gpt2");
        int gets = _hub.CdnGets;
        using (var client = Client()) await client.EnsureModelAsync("fixtures/tiny-gpt2");
        Assert.Equal(gets, _hub.CdnGets);
        _hub.Dispose();
        using var offline = Client(offline: true);
        string snapshot = await offline.EnsureModelAsync("fixtures/tiny-gpt2");
        Assert.True(File.Exists(Path.Combine(snapshot, "model.safetensors")));
        var e = await Assert.ThrowsAsync<HubException>(() => offline.EnsureModelAsync("fixtures/other"));
        Assert.Contains("not in the cache", e.Message);
    }

    [Fact]
    public async Task Dropped_connection_is_resumed_with_a_range_request()
    {
        _hub.DropNextAfter = 100_000;
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.EnsureModelAsync("fixtures/tiny-gpt2"));
        Assert.Contains("run the command again to resume", e.Message);
        var partial = Directory.GetFiles(_cache, "*.incomplete", SearchOption.AllDirectories).Single();
        Assert.Equal(100_000, new FileInfo(partial).Length);
        string snapshot = await client.EnsureModelAsync("fixtures/tiny-gpt2");
        Assert.Contains("bytes=100000-", _hub.RangesSeen);
        Assert.Empty(Directory.GetFiles(_cache, "*.incomplete", SearchOption.AllDirectories));
        Assert.Equal(Logits(Fixtures.Model("tiny-gpt2")), Logits(snapshot));
    }

    [Fact]
    public async Task Corrupt_download_fails_verification_and_leaves_nothing_behind()
    {
        _hub.Corrupt = true;
        using var client = Client();
        var e = await Assert.ThrowsAsync<HubException>(() => client.EnsureModelAsync("fixtures/tiny-gpt2"));
        Assert.Contains("does not match the Hub's", e.Message);
        Assert.Empty(Directory.GetFiles(_cache, "*.incomplete", SearchOption.AllDirectories));
        Assert.DoesNotContain(Directory.GetFiles(Path.Combine(_cache, "models--fixtures--tiny-gpt2", "blobs")),
            f => new FileInfo(f).Length > 1_000_000);
    }

    [Fact]
    public async Task Not_found_and_unauthorized_are_clear_errors_and_a_token_opens_private_models()
    {
        using var client = Client();
        var missing = await Assert.ThrowsAsync<HubException>(() => client.EnsureModelAsync("nobody/nothing"));
        Assert.Contains("404", missing.Message);
        var denied = await Assert.ThrowsAsync<HubException>(() => client.EnsureModelAsync("fixtures/private-gpt2"));
        Assert.Contains("HF_TOKEN", denied.Message);
        using var withToken = Client(token: FakeHub.Token);
        Assert.True(
            File.Exists(Path.Combine(await withToken.EnsureModelAsync("fixtures/private-gpt2"), "model.safetensors")));
    }

    [Fact]
    public async Task Repo_with_only_pytorch_model_bin_downloads_it_and_loads_it_safely()
    {
        using var client = Client();
        string snapshot = await client.EnsureModelAsync("tiny-gpt2-bin");
        Assert.True(File.Exists(Path.Combine(snapshot, "pytorch_model.bin")));
        Assert.Equal(Logits(Fixtures.Model("tiny-gpt2")), Logits(snapshot));
    }

    [Fact]
    public void Unreachable_endpoint_is_a_one_line_error()
    {
        using var client =
            new HubDownloader(new HubSettings { Endpoint = "http://127.0.0.1:9", CacheDirectory = _cache });
        var e = Assert.Throws<HubException>(() => client.EnsureModelAsync("gpt2").GetAwaiter().GetResult());
        Assert.Contains("cannot reach", e.Message);
        Assert.Contains("--offline", e.Message);
    }

    [Fact]
    public void Cli_model_id_downloads_through_HF_ENDPOINT_then_works_offline()
    {
        string? old = Environment.GetEnvironmentVariable("HF_ENDPOINT");
        Environment.SetEnvironmentVariable("HF_ENDPOINT", _hub.Endpoint);
        try
        {
            var (code, stdout, err) = CliTests.RunCli("download", "fixtures/tiny-gpt2", "--cache-dir", _cache);
            Assert.True(code == 0, err);
            Assert.Contains(FakeHub.Commit, stdout);
            _hub.Dispose();
            (code, stdout, err) = CliTests.RunCli("generate", "--model", "fixtures/tiny-gpt2", "--cache-dir", _cache,
                "--offline",
                "--tokenizer", Fixtures.TokenizerDir, "--device", "cpu", "--prompt", "Transformers are the",
                "--max-new-tokens", "20", "--json");
            Assert.True(code == 0, err);
            Assert.Contains(GenerationTests.Find("greedy_p1_20")["texts"]![0]!.GetValue<string>()
                .Replace("\n", "\\n")[..10], stdout);
            (code, _, err) = CliTests.RunCli("download", "nobody/nothing", "--cache-dir", _cache, "--offline");
            Assert.Equal(1, code);
            Assert.Contains("error: nobody/nothing@main is not in the cache", err);
        }
        finally { Environment.SetEnvironmentVariable("HF_ENDPOINT", old); }
    }
}
