namespace ScratchGpt.Backends;

/// <summary>
/// A GPU backend seen as what it is underneath: buffers plus kernels from kernels/ launched by name.
/// Code that needs more than the forward pass's operations (the training step in
/// <see cref="Training.DeviceTrainingModel"/>) is written once against this and runs on OpenCL and CUDA alike.
/// </summary>
public interface IKernelRunner : IBackend
{
    /// <summary>
    /// Launches kernel <paramref name="name"/> on a grid of <paramref name="groupsX"/> × <paramref name="groupsY"/>
    /// work-groups (CUDA blocks) of <paramref name="localX"/> × <paramref name="localY"/> work-items (threads).
    /// Arguments are <see cref="IDeviceBuffer"/>, int or float, in the kernel's order. Launches run in order.
    /// </summary>
    void Run(string name, long groupsX, long groupsY, int localX, int localY, params object[] args);

    /// <summary>Sets the first <paramref name="count"/> floats of <paramref name="buffer"/> to zero.</summary>
    void Zero(IDeviceBuffer buffer, long count);

    /// <summary>dst[0 ..] = src (host → device), for per-step inputs such as token ids (as their bits) and masks.</summary>
    void Write(IDeviceBuffer dst, ReadOnlySpan<float> src);

    /// <summary>Work-groups of <paramref name="perGroup"/> work-items that cover <paramref name="items"/> (at least one;
    /// kernels skip the work-items past the end).</summary>
    static long Groups(long items, int perGroup) => Math.Max(1, (items + perGroup - 1) / perGroup);
}
