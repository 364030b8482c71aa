using ScratchGpt.Backends.Cpu;
using ScratchGpt.Backends.Ilgpu;
using ScratchGpt.Backends.Reference;

namespace ScratchGpt.Backends;

/// <summary>
/// Turns a --device value into a backend: auto | cpu | reference | cuda[:N] | opencl[:N] | ilgpu-cpu.
/// auto takes a CUDA GPU, then an OpenCL device ILGPU can use, then the SIMD CPU backend, silently (what it tried
/// goes to <c>log</c>, which the CLI shows with --verbose).
/// </summary>
public static class BackendFactory
{
    public const string Expected = "auto, cpu, reference, cuda[:N], opencl[:N] or ilgpu-cpu";

    public static IBackend Create(string device, Action<string>? log = null)
    {
        var (kind, index) = Parse(device);
        switch (kind)
        {
            case "cpu":
                return new CpuBackend();
            case "reference":
                return new ReferenceBackend();
            case "auto":
                foreach (var gpu in new[] { "cuda", "opencl" })
                {
                    try { return IlgpuDevices.Open(gpu, index ?? 0); }
                    catch (BackendException e)
                    {
                        log?.Invoke($"{gpu} unavailable: {e.Message}; trying the next device");
                    }
                }
                return new CpuBackend();
            default:   // cuda, opencl, ilgpu-cpu: an explicit device that cannot be had is an error naming why
                return IlgpuDevices.Open(kind, index ?? 0);
        }
    }

    public static (string Kind, int? Index) Parse(string device)
    {
        string d = device.Trim().ToLowerInvariant();
        int colon = d.IndexOf(':');
        string kind = colon < 0 ? d : d[..colon];
        int? index = null;
        if (colon >= 0)
        {
            if (!int.TryParse(d[(colon + 1)..], out int i) || i < 0)
                throw new ArgumentException($"--device: '{device}' has an invalid device index (expected e.g. cuda:0)");
            index = i;
        }
        if (kind is not ("auto" or "cpu" or "reference" or "opencl" or "cuda" or "ilgpu-cpu"))
            throw new ArgumentException($"--device: unknown device '{device}' (expected {Expected})");
        return (kind, index);
    }
}
