namespace ScratchGpt.Backends;

/// <summary>A block of device memory holding float32 values (or 16-bit weights, for backends that keep them).</summary>
public interface IDeviceBuffer : IDisposable
{
    /// <summary>Number of elements.</summary>
    long Length { get; }
}
