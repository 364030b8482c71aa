using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>
/// How Spectre.Console writes: colours and a terminal's width on a terminal; plain text at each table's natural
/// width when the output goes to a file or a pipe, or when NO_COLOR is set (https://no-color.org).
/// </summary>
public static class Terminal
{
    public static void Configure()
    {
        bool plain = Console.IsOutputRedirected
            || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("NO_COLOR"));
        // The standard output as it is now (in-process tests swap it per run).
        var console = AnsiConsole.Create(new AnsiConsoleSettings
        {
            Out = new AnsiConsoleOutput(Console.Out),
            Ansi = plain ? AnsiSupport.No : AnsiSupport.Detect,
            ColorSystem = plain ? ColorSystemSupport.NoColors : ColorSystemSupport.Detect,
            Interactive = Console.IsOutputRedirected ? InteractionSupport.No : InteractionSupport.Detect,
        });
        // A pipe has no width: let tables take their natural width rather than wrapping at 80 columns.
        if (Console.IsOutputRedirected) console.Profile.Width = 1_000_000;
        AnsiConsole.Console = console;
    }
}
