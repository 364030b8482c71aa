using System.CommandLine;
using ScratchGpt.Backends;
using ScratchGpt.Backends.Ilgpu;
using ScratchGpt.Loading;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>
/// scratchgpt kernels test: every kernel of a backend (forward and training) against the reference backend, as a
/// table of errors. scratchgpt kernels compile: the PTX or OpenCL C that ILGPU generates for every kernel.
/// </summary>
public static class KernelsCommand
{
    static readonly Option<string?> Op = new("--op") { Description = "only the cases whose kernel name contains this" };
    static readonly Option<bool> Perf = new("--perf")
    {
        Description = "also time each case on the device: µs per op (best of 3) and its inputs + outputs in GB/s",
    };
    static readonly Option<string> Target = new("--target") { Description = "ptx | opencl", Required = true };
    static readonly Option<string> Arch = new("--arch")
    {
        Description = "CUDA architecture for --target ptx",
        DefaultValueFactory = _ => "sm_90",
    };
    static readonly Option<string> Out = new("--out")
    {
        Description = "folder for one file per kernel",
        Required = true,
    };

    public static Command Create()
    {
        var test = new Command("test",
            "Run every kernel against the reference backend on random inputs of awkward sizes.");
        test.Options.Add(Common.Device); test.Options.Add(Op); test.Options.Add(Perf); test.Options.Add(Common.Verbose);
        Common.Action(test, p =>
        {
            string device = p.GetValue(Common.Device)!;
            using var be = BackendFactory.Create(device == "auto" ? "ilgpu-cpu" : device,
                p.GetValue(Common.Verbose) ? Console.Error.WriteLine : null);
            Console.Error.WriteLine($"Device: {be.Kind} — {be.DeviceName}");
            // The forward pass's kernels, then (on ILGPU devices) the training kernels. ILGPU's CPU accelerator
            // runs a thread per GPU thread: it gets the small shapes.
            bool small = be.Kind == "ilgpu-cpu";
            bool perf = p.GetValue(Perf);
            var checks = KernelCheck.Run(be, large: !small, perf: perf);
            if (be is IlgpuBackend gpu) checks = checks.Concat(Training.TrainingKernelCheck.Run(gpu, small: small));
            if (p.GetValue(Op) is string op)
                checks = checks.Where(r => r.Kernel.Contains(op, StringComparison.OrdinalIgnoreCase));
            var table = new Table().AddColumn("kernel").AddColumn("shape").AddColumn("max abs error")
                .AddColumn("relative").AddColumn("");
            if (perf)
                table.AddColumn(new TableColumn("µs").RightAligned()).AddColumn(new TableColumn("GB/s").RightAligned());
            bool ok = true;
            int count = 0;
            foreach (var r in checks)
            {
                bool pass = r.RelativeError < KernelCheck.Tolerance;
                ok &= pass;
                count++;
                var cells = new List<string> { Markup.Escape(r.Kernel), Markup.Escape(r.Shape),
                    r.MaxAbsError.ToString("E2"),
                    r.RelativeError.ToString("E2"), pass ? "[green]ok[/]" : "[red]FAIL[/]" };
                if (perf)
                    cells.AddRange([r.Microseconds?.ToString("F1") ?? "", r.GigabytesPerSecond?.ToString("F2") ?? ""]);
                table.AddRow(cells.ToArray());
            }
            AnsiConsole.Write(table);
            Console.WriteLine($"{count} cases on {be.Kind}: {(ok ? "all within" : "NOT all within")} " +
                $"{KernelCheck.Tolerance:E0} relative");
            return ok ? 0 : 1;
        });

        var compile = new Command("compile",
            "Write the PTX or OpenCL C that ILGPU generates for every kernel, one file each.");
        compile.Options.Add(Target);
        compile.Options.Add(Arch);
        compile.Options.Add(Out);
        compile.Options.Add(Common.Verbose);
        Common.Action(compile, p =>
        {
            string target = p.GetValue(Target)!, dir = p.GetValue(Out)!;
            // everything compiles before a file is written
            var sources = KernelCompiler.Compile(target, p.GetValue(Arch)!).ToList();
            Directory.CreateDirectory(dir);
            foreach (var (name, source) in sources)
                AtomicFile.WriteAllText(Path.Combine(dir, name + (target == "ptx" ? ".ptx" : ".cl")), source);
            Console.Error.WriteLine($"wrote {sources.Count} kernels to {dir}");
            return 0;
        });

        var c = new Command("kernels", "Kernel tools for people who port or tune a kernel.");
        c.Subcommands.Add(test);
        c.Subcommands.Add(compile);
        return c;
    }
}
