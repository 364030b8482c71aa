using System.CommandLine;
using ScratchGpt.Cli;

// scratchgpt: the command-line front end. Each subcommand lives in its own *Command.cs file beside this one.
var root = new RootCommand("ScratchGpt: a from-scratch GPT-2 runtime — generate, inspect, score and benchmark Hugging Face GPT-2 checkpoints.");
root.Subcommands.Add(GenerateCommand.Create());
root.Subcommands.Add(StepsCommand.Create());
root.Subcommands.Add(ScoreCommand.Create());
root.Subcommands.Add(TokenizeCommand.Create());
root.Subcommands.Add(ForwardCommand.Create());
root.Subcommands.Add(InspectCommands.Predict());
root.Subcommands.Add(InspectCommands.Attention());
root.Subcommands.Add(InspectCommands.Summary());
root.Subcommands.Add(DevicesCommand.Create());
root.Subcommands.Add(InitCommand.Create());
root.Subcommands.Add(BenchCommand.Create());
root.Subcommands.Add(KernelsCommand.Create());
root.Subcommands.Add(TrainCommand.Create());
root.Subcommands.Add(ConvertCommand.Create());
root.Subcommands.Add(DownloadCommand.Create());
root.Subcommands.Add(CompareCommand.Create());
// Spectre's tables and progress bars write to the standard output as it is now (in-process tests swap it per run).
Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(
    new Spectre.Console.AnsiConsoleSettings { Out = new Spectre.Console.AnsiConsoleOutput(Console.Out) });
return await root.Parse(args).InvokeAsync();
