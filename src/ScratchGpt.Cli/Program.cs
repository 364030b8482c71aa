using System.CommandLine;
using System.Runtime.InteropServices;
using ScratchGpt.Cli;

// scratchgpt: the command-line front end. Each subcommand lives in its own *Command.cs file beside this one.
// The root is named for the installed command (a RootCommand takes the name of the DLL that runs it).
var root = new Command("scratchgpt",
    "ScratchGpt: a from-scratch GPT-2 runtime — generate, inspect, score and benchmark Hugging Face GPT-2 checkpoints.")
{
    new System.CommandLine.Help.HelpOption(), new VersionOption(),
};
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(StepsCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(InspectCommands.Predict());
root.Subcommands.Add(InspectCommands.Attention());
root.Subcommands.Add(InspectCommands.Summary());
root.Subcommands.Add(LensCommand.Create());
root.Subcommands.Add(AblateCommand.Create());
root.Subcommands.Add(ProbeCommand.Create());
root.Subcommands.Add(DevicesCommand.Create());
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(KernelsCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(DownloadCommand.Create());
root.Subcommands.Add(CompareCommand.Create());
Terminal.Configure();

var parse = root.Parse(args);
if (parse.Errors.Count > 0) return UsageErrors.Report(parse);

// Ctrl-C (SIGINT) and SIGTERM cancel the command's token instead of killing the process, so generate prints what
// it has and train saves its checkpoint. A second signal is not intercepted: it ends the process at once.
// A shell starts background jobs with SIGINT ignored, and .NET keeps an inherited "ignore"; `kill -INT` or
// `timeout -s INT` sent to such a run must still stop it cleanly, so the default disposition comes back first.
Signals.RestoreDefault(Signals.SigInt);
using var stop = new CancellationTokenSource();
void OnSignal(PosixSignalContext c)
{
    if (stop.IsCancellationRequested) return;
    c.Cancel = true;
    stop.Cancel();
}
using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
return await parse.InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null }, stop.Token);
