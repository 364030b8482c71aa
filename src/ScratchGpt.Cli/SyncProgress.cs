namespace ScratchGpt.Cli;

/// <summary>IProgress that reports on the calling thread (Progress&lt;T&gt; would post to the thread pool, so a
/// progress bar could update after the work it describes has finished).</summary>
public sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
{
    public void Report(T value) => report(value);
}
