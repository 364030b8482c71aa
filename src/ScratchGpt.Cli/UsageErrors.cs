using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;

namespace ScratchGpt.Cli;

/// <summary>
/// Command-line mistakes as one line each, naming the option and what it expects, then one line pointing to --help
/// (System.CommandLine would print .NET type names and the whole help text).
/// </summary>
public static partial class UsageErrors
{
    public static int Report(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        // The first mistake only: the ones after it are often its echo (the value of a mistyped option).
        Console.Error.WriteLine("error: " + Describe(parse.Errors[0].Message, command));
        string path = string.Join(' ', Ancestry(parse.CommandResult).Reverse().Skip(1));
        Console.Error.WriteLine($"Run 'scratchgpt {(path.Length > 0 ? path + " " : "")}--help' for the options.");
        return 1;
    }

    private static IEnumerable<string> Ancestry(SymbolResult? r)
    {
        for (; r is CommandResult c; r = c.Parent) yield return c.Command.Name;
    }

    private static string Describe(string message, Command command)
    {
        var m = CannotParse().Match(message);
        if (m.Success)
            return $"{m.Groups["option"].Value} expects {Kind(m.Groups["type"].Value)}, got " +
                $"'{m.Groups["value"].Value}'";
        m = Unrecognized().Match(message);
        if (m.Success)
        {
            string given = m.Groups["token"].Value;
            var names = command.Options.SelectMany(o => o.Aliases.Prepend(o.Name))
                .Concat(command.Subcommands.Select(c => c.Name));
            var near = names.Select(n => (Name: n, Distance: Distance(Normalize(given), Normalize(n))))
                .Where(x => x.Distance <= Math.Max(2, given.Length / 4)).OrderBy(x => x.Distance).Select(x => x.Name)
                .FirstOrDefault();
            return near is null ? $"unknown option or argument '{given}'"
                : $"unknown option '{given}'; did you mean {near}?";
        }
        return message.ReplaceLineEndings(" ");
    }

    private static string Normalize(string s) => s.TrimStart('-').Replace('_', '-').ToLowerInvariant();

    private static string Kind(string dotnetType) => dotnetType switch
    {
        _ when dotnetType.Contains("Int32") || dotnetType.Contains("Int64") => "an integer",
        _ when dotnetType.Contains("Single") || dotnetType.Contains("Double") => "a number",
        _ when dotnetType.Contains("Boolean") => "true or false",
        _ => "a value of another kind",
    };

    /// <summary>Levenshtein distance: the fewest single-character edits between two option names.</summary>
    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }

    [GeneratedRegex(
        @"Cannot parse argument '(?<value>.*)' for option '(?<option>[^']+)' as expected type '(?<type>[^']+)'")]
    private static partial Regex CannotParse();

    [GeneratedRegex(@"Unrecognized command or argument '(?<token>.*)'")]
    private static partial Regex Unrecognized();
}
