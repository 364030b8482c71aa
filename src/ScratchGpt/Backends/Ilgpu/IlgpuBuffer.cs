using ILGPU;
using ILGPU.Runtime;

namespace ScratchGpt.Backends.Ilgpu;

/// <summary>Device memory of an <see cref="IlgpuBackend"/>: float32 values, or 16-bit weights kept 16-bit.</summary>
public sealed class IlgpuBuffer : IDeviceBuffer
{
    private readonly IlgpuBackend _owner;
    private readonly MemoryBuffer1D<float, Stride1D.Dense>? _floats;
    private readonly MemoryBuffer1D<ushort, Stride1D.Dense>? _halves;
    private bool _disposed;

    public WeightPrecision Precision { get; }
    public long Length { get; }
    private long Bytes => Math.Max(1, Length) * (Precision == WeightPrecision.Float32 ? 4 : 2);

    internal IlgpuBuffer(IlgpuBackend owner, Accelerator accelerator, long length, WeightPrecision precision)
    {
        _owner = owner;
        Length = length;
        Precision = precision;
        long elements = Math.Max(1, length);   // ILGPU refuses empty buffers; a view of length 0 is still fine
        if (precision == WeightPrecision.Float32) _floats = accelerator.Allocate1D<float>(elements);
        else _halves = accelerator.Allocate1D<ushort>(elements);
        owner.Track(+1, Bytes);
    }

    /// <summary>The float32 contents; an error for a 16-bit weight buffer, which only the weight kernels
    /// read.</summary>
    internal ArrayView<float> View =>
        _floats is { } f ? f.View : throw new BackendException($"a {Precision} weight buffer is not a float32 buffer");

    internal ArrayView<float> Slice(long offset, long count) => View.SubView(offset, count);

    /// <summary>The 16-bit contents of a float16 / bfloat16 weight buffer.</summary>
    internal ArrayView<ushort> Bits => _halves!.View;

    /// <summary>The same memory read as ints (token ids travel as the bits of floats).</summary>
    internal ArrayView<int> Ints => View.Cast<int>();

    /// <summary>The weights as the element type a weight kernel reads (the same bytes).</summary>
    internal ArrayView<TWeight> Weights<TWeight>() where TWeight : unmanaged =>
        _floats is { } f ? ((ArrayView<float>)f.View).Cast<TWeight>() : ((ArrayView<ushort>)_halves!.View)
            .Cast<TWeight>();

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _floats?.Dispose();
        _halves?.Dispose();
        _owner.Track(-1, -Bytes);
    }
}
