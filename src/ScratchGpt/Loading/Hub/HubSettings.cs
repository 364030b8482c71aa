namespace ScratchGpt.Loading.Hub;

/// <summary>
/// Where models come from and where they are kept, read from the same environment variables the
/// huggingface_hub library uses, so the two share one cache:
///   HF_ENDPOINT (default https://huggingface.co), HF_HOME (default ~/.cache/huggingface),
///   HF_HUB_CACHE (default $HF_HOME/hub), HF_TOKEN (private and gated models), HF_HUB_OFFLINE=1.
/// </summary>
public sealed record HubSettings
{
    public string Endpoint { get; init; } = "https://huggingface.co";
    public string CacheDirectory { get; init; } = "";
    public string? Token { get; init; }
    public bool Offline { get; init; }

    public static HubSettings FromEnvironment(string? cacheDir = null, bool offline = false)
    {
        string? Env(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } v ? v : null;
        string home = Env("HF_HOME")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "huggingface");
        return new HubSettings
        {
            Endpoint = (Env("HF_ENDPOINT") ?? "https://huggingface.co").TrimEnd('/'),
            CacheDirectory = cacheDir ?? Env("HF_HUB_CACHE") ?? Path.Combine(home, "hub"),
            Token = Env("HF_TOKEN"),
            Offline = offline || Env("HF_HUB_OFFLINE") is "1" or "true" or "TRUE" or "yes",
        };
    }
}
