namespace ScratchGpt.Backends.Cuda;

public sealed partial class CudaBackend
{
    public static IBackend Create(int index) => throw new BackendException("CUDA backend: not built yet");
}
