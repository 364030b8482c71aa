using System.CommandLine;
using ScratchGpt.Backends;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>scratchgpt devices: what each backend finds on this machine.</summary>
public static class DevicesCommand
{
    public static Command Create()
    {
        var c = new Command("devices", "List the devices the CPU, OpenCL and CUDA backends can use.");
        c.Options.Add(Common.Verbose);
        Common.Action(c, p =>
        {
            var table = new Table().AddColumn("--device").AddColumn("name").AddColumn("status");
            foreach (var d in DeviceList.Probe())
                table.AddRow(Markup.Escape(d.Id), Markup.Escape(d.Name), Markup.Escape(d.Status));
            AnsiConsole.Write(table);
            return 0;
        });
        return c;
    }
}
