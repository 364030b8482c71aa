namespace ScratchGpt.Backends.OpenCl;

public sealed partial class OpenClBackend
{
    public static IBackend Create(int index, bool gpuOnly) => throw new BackendException("OpenCL backend: not built yet");
}
