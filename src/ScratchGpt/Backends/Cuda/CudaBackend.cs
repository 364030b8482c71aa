namespace ScratchGpt.Backends.Cuda;

/// <summary>CUDA backend entry points (the driver-API implementation is in CudaDevice.cs).</summary>
public static partial class CudaBackend
{
    public static IBackend Create(int index) => CudaDevice.Open(index);

    public static IEnumerable<(string Id, string Name)> ListDevices() => CudaDevice.List();
}
