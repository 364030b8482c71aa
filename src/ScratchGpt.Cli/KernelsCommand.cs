using System.CommandLine;
using ScratchGpt.Backends;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt kernels test: every kernel of a backend (forward and training) against the CPU reference, with a table of errors.</summary>
public static class KernelsCommand
{
    public static Command Create()
    {
        var test = new Command("test", "Run every kernel against the CPU reference on random inputs of awkward sizes.");
        test.Options.Add(Common.Device); test.Options.Add(Common.Verbose);
        Common.Action(test, p =>
        {
            string device = p.GetValue(Common.Device)!;
            using var be = BackendFactory.Create(device == "auto" ? "opencl" : device, m => Console.Error.WriteLine(m));
            Console.Error.WriteLine($"Device: {be.Kind} — {be.DeviceName}");
            var table = new Table().AddColumn("kernel").AddColumn("shape").AddColumn("max abs error").AddColumn("relative").AddColumn("");
            bool ok = true;
            // The forward pass's kernels, then (on OpenCL and CUDA) the training kernels.
            var checks = KernelCheck.Run(be);
            if (be is IKernelRunner gpu) checks = checks.Concat(Training.TrainingKernelCheck.Run(gpu));
            foreach (var r in checks)
            {
                bool pass = r.RelativeError < 1e-4;
                ok &= pass;
                table.AddRow(r.Kernel, Markup.Escape(r.Shape), r.MaxAbsError.ToString("E2"), r.RelativeError.ToString("E2"), pass ? "[green]ok[/]" : "[red]FAIL[/]");
            }
            AnsiConsole.Write(table);
            return ok ? 0 : 1;
        });
        var c = new Command("kernels", "Kernel tools for people who port or tune a kernel.");
        c.Subcommands.Add(test);
        return c;
    }
}
