using ScratchGpt.Backends.Cpu;

namespace ScratchGpt.Backends;

/// <summary>Turns a --device value (auto | cpu | opencl[:N] | cuda[:N]) into a backend.</summary>
public static class BackendFactory
{
    public static IBackend Create(string device, Action<string>? log = null)
    {
        var (kind, index) = Parse(device);
        switch (kind)
        {
            case "cpu":
                return new CpuBackend();
            case "auto":
                foreach (var (name, make) in GpuCandidates(index))
                {
                    try { return make(); }
                    catch (Exception e) when (e is BackendException or DllNotFoundException or EntryPointNotFoundException)
                    { log?.Invoke($"{name} unavailable: {e.Message}; trying the next device"); }
                }
                return new CpuBackend();
            case "opencl":
                return OpenCl.OpenClBackend.Create(index ?? 0, gpuOnly: false);
            case "cuda":
                return Cuda.CudaBackend.Create(index ?? 0);
            default:
                throw new ArgumentException($"--device: unknown device '{device}' (expected auto, cpu, opencl[:N] or cuda[:N])");
        }
    }

    private static IEnumerable<(string, Func<IBackend>)> GpuCandidates(int? index)
    {
        yield return ("cuda", () => Cuda.CudaBackend.Create(index ?? 0));
        yield return ("opencl GPU", () => OpenCl.OpenClBackend.Create(index ?? 0, gpuOnly: true));
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
                throw new ArgumentException($"--device: '{device}' has an invalid device index (expected e.g. opencl:0)");
            index = i;
        }
        if (kind is not ("auto" or "cpu" or "opencl" or "cuda"))
            throw new ArgumentException($"--device: unknown device '{device}' (expected auto, cpu, opencl[:N] or cuda[:N])");
        return (kind, index);
    }
}

/// <summary>A GPU runtime call failed; the message names the call and its status.</summary>
public sealed class BackendException : Exception
{
    public BackendException(string message) : base(message) { }
    public BackendException(string message, Exception inner) : base(message, inner) { }
}
