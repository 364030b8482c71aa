namespace ScratchGpt.Tests;

/// <summary>What a reader of the source can count on: lines that fit a 120-column editor or review pane.</summary>
public class SourceLayoutTests
{
    public const int MaxColumns = 120;

    [Fact]
    public void EveryCSharpLineFitsIn120Columns()
    {
        var tooLong = new List<string>();
        int files = 0;
        foreach (string folder in new[] { "src", "kernels", "tests" })
            foreach (string path in Directory.EnumerateFiles(Path.Combine(Fixtures.RepoRoot, folder), "*.cs",
                         SearchOption.AllDirectories))
            {
                string rel = Path.GetRelativePath(Fixtures.RepoRoot, path);
                if (rel.Split(Path.DirectorySeparatorChar).Any(d => d is "bin" or "obj")) continue;
                files++;
                string[] lines = File.ReadAllLines(path);
                for (int i = 0; i < lines.Length; i++)
                    if (lines[i].Length > MaxColumns) tooLong.Add($"{rel}:{i + 1} ({lines[i].Length} columns)");
            }
        Assert.True(files > 100, $"only {files} C# files found under {Fixtures.RepoRoot}");
        Assert.True(tooLong.Count == 0, $"{tooLong.Count} lines longer than {MaxColumns}:\n" +
            string.Join("\n", tooLong.Take(20)));
    }
}
