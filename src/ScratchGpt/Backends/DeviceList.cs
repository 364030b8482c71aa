using ScratchGpt.Backends.Ilgpu;

namespace ScratchGpt.Backends;

/// <summary>What each backend can use here, and why a kind of device cannot be used; never throws.</summary>
public static class DeviceList
{
    public static IReadOnlyList<DeviceInfo> Probe()
    {
        var list = new List<DeviceInfo>
        {
            new("cpu", new Cpu.CpuBackend().DeviceName, "available (SIMD)"),
            new("reference", "plain float32 loops", "available (the oracle the tests compare with)"),
        };
        foreach (var kind in new[] { "cuda", "opencl", "ilgpu-cpu" })
        {
            try
            {
                var devices = IlgpuDevices.Of(kind);
                if (devices.Count == 0) list.Add(new(kind, "-", "unavailable: " + IlgpuDevices.WhyNone(kind)));
                for (int i = 0; i < devices.Count; i++)
                    list.Add(new(kind == "ilgpu-cpu" ? kind : $"{kind}:{i}", devices[i].Name,
                        kind == "ilgpu-cpu" ? "available (ILGPU's CPU accelerator: every kernel, slowly, debuggable)"
                        : "available"));
            }
            catch (Exception e) { list.Add(new(kind, "-", "unavailable: " + e.Message.ReplaceLineEndings(" "))); }
        }
        return list;
    }
}
