using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace ScratchGpt.Tests;

/// <summary>
/// The real scratchgpt process (the CLI's DLL beside the tests, run by the same dotnet), with its standard
/// streams redirected: what a user or a script sees, exit code included.
/// </summary>
public sealed class CliProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _out = new(), _err = new();

    public CliProcess(IEnumerable<string> args, IDictionary<string, string>? environment = null)
    {
        var info = new ProcessStartInfo(Environment.ProcessPath!)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true,
            UseShellExecute = false, WorkingDirectory = AppContext.BaseDirectory,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "ScratchGpt.Cli.dll"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment.Remove("NO_COLOR");
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) info.Environment[k] = v;
        _process = new Process { StartInfo = info };
        _process.Start();
        // Read as characters arrive, not by lines: streamed text has no newline for a long while.
        _readers = [Pump(_process.StandardOutput, _out), Pump(_process.StandardError, _err)];
    }

    private readonly Task[] _readers;

    private static Task Pump(StreamReader reader, StringBuilder into) => Task.Run(async () =>
    {
        var buffer = new char[4096];
        int n;
        while ((n = await reader.ReadAsync(buffer)) > 0) lock (into) into.Append(buffer, 0, n);
    });

    public string Out { get { lock (_out) return _out.ToString(); } }
    public string Err { get { lock (_err) return _err.ToString(); } }

    /// <summary>Runs to the end (at most <paramref name="timeoutSeconds"/>): exit code, stdout, stderr.</summary>
    public static (int Code, string Out, string Err) Run(params string[] args) => Run(args, null);

    public static (int Code, string Out, string Err) Run(string[] args, IDictionary<string, string>? environment,
        int timeoutSeconds = 300)
    {
        using var p = new CliProcess(args, environment);
        return (p.Wait(timeoutSeconds), p.Out, p.Err);
    }

    /// <summary>Waits for the exit; returns its code (fails the test if it does not come).</summary>
    public int Wait(int timeoutSeconds = 300)
    {
        if (!_process.WaitForExit(timeoutSeconds * 1000))
        {
            _process.Kill(entireProcessTree: true);
            throw new TimeoutException($"scratchgpt did not exit within {timeoutSeconds} s; stderr: {Err}");
        }
        Task.WaitAll(_readers);   // the redirected streams are drained
        return _process.ExitCode;
    }

    /// <summary>Waits until <paramref name="condition"/> holds for (stdout, stderr), or the process ends.</summary>
    public bool WaitUntil(Func<string, string, bool> condition, int timeoutSeconds = 120)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed.TotalSeconds < timeoutSeconds)
        {
            if (condition(Out, Err)) return true;
            if (_process.HasExited) return condition(Out, Err);
            Thread.Sleep(20);
        }
        return false;
    }

    /// <summary>Sends a real POSIX signal (SIGINT = 2, SIGTERM = 15) to the process.</summary>
    public void Signal(int signal)
    {
        if (Kill(_process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({_process.Id}, {signal}) failed");
    }

    public const int SigInt = 2, SigTerm = 15;

    [DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    private static extern int Kill(int pid, int signal);

    public void Dispose()
    {
        if (!_process.HasExited) _process.Kill(entireProcessTree: true);
        _process.Dispose();
    }
}
