namespace ScratchGpt.Backends;

/// <summary>One row of `scratchgpt devices`.</summary>
public sealed record DeviceInfo(string Id, string Name, string Status);

/// <summary>Probes each backend for the devices it can use; never throws.</summary>
public static class DeviceList
{
    public static IReadOnlyList<DeviceInfo> Probe()
    {
        var list = new List<DeviceInfo> { new("cpu", new Cpu.CpuBackend().DeviceName, "available") };
        try
        {
            var devices = OpenCl.OpenClNative.Devices(gpuOnly: false);
            if (devices.Count == 0) list.Add(new("opencl", "-", "no OpenCL device (install an ICD, e.g. pocl-opencl-icd)"));
            for (int i = 0; i < devices.Count; i++)
                list.Add(new($"opencl:{i}", OpenCl.OpenClNative.DeviceString(devices[i].Device, OpenCl.OpenClNative.DeviceName),
                    "available (" + OpenCl.OpenClNative.PlatformString(devices[i].Platform, OpenCl.OpenClNative.PlatformName) + ")"));
        }
        catch (Exception e) when (e is DllNotFoundException or BackendException or EntryPointNotFoundException)
        { list.Add(new("opencl", "-", "unavailable: " + (e is DllNotFoundException ? "libOpenCL.so.1 not found" : e.Message))); }
        try
        {
            foreach (var (id, name) in Cuda.CudaBackend.ListDevices()) list.Add(new(id, name, "available"));
        }
        catch (Exception e) when (e is DllNotFoundException or BackendException or EntryPointNotFoundException)
        { list.Add(new("cuda", "-", "unavailable: " + e.Message)); }
        return list;
    }
}
