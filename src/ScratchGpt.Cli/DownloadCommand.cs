using System.CommandLine;
using ScratchGpt.Loading.Hub;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt download: fetch a model from the Hub into the shared Hugging Face cache.</summary>
public static class DownloadCommand
{
    static readonly Argument<string> Id = new("MODEL_ID")
    {
        Description = "Hub model id, e.g. gpt2, distilgpt2, gpt2-xl, DeepESP/gpt2-spanish",
    };

    public static Command Create()
    {
        var c = new Command("download",
            "Download config, tokenizer and weights of a Hub model into the Hugging Face cache (resumable, SHA-256 " +
            "checked). HF_ENDPOINT, HF_TOKEN, HF_HOME, HF_HUB_CACHE, HF_HUB_OFFLINE are honoured.");
        c.Arguments.Add(Id);
        Common.AddHubOptions(c);
        c.Options.Add(Common.Verbose);
        Common.Action(c, (p, ct) =>
        {
            var settings = HubSettings.FromEnvironment(p.GetValue(Common.CacheDir), p.GetValue(Common.Offline));
            using var hub = new HubDownloader(settings);
            string dir = RunWithProgress(hub, p.GetValue(Id)!, p.GetValue(Common.Revision)!, ct);
            Console.WriteLine(dir);
            return Task.FromResult(0);
        });
        return c;
    }

    /// <summary>Downloads with a progress bar per file (bytes, rate, time left) on a terminal, plain lines
    /// otherwise.</summary>
    public static string RunWithProgress(HubDownloader hub, string id, string revision, CancellationToken ct)
    {
        if (!AnsiConsole.Profile.Capabilities.Interactive || Console.IsErrorRedirected)
        {
            var done = new HashSet<string>();
            return hub.EnsureModelAsync(id, revision, new SyncProgress<DownloadProgress>(r =>
            {
                if (r.Total is { } t && r.Bytes == t && done.Add(r.File))
                    Console.Error.WriteLine($"downloaded {r.File}: {r.Bytes:N0} bytes at " +
                        $"{r.BytesPerSecond / 1e6:F1} MB/s");
            }), ct).GetAwaiter().GetResult();
        }
        string result = "";
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new DownloadedColumn(),
            new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = hub.EnsureModelAsync(id, revision, new SyncProgress<DownloadProgress>(r =>
                {
                    if (!tasks.TryGetValue(r.File, out var task))
                        tasks[r.File] = task = ctx.AddTask(r.File.EscapeMarkup(), maxValue: r.Total ?? r.Bytes);
                    task.Value = r.Bytes;
                }), ct).GetAwaiter().GetResult();
            });
        return result;
    }
}
