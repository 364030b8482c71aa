namespace ScratchGpt.Backends.Cpu;

/// <summary>CPU memory: float32 values in an array (activations, vectors, a float32 KV cache), a float16 KV cache's
/// halves, or a weight matrix as uploaded (float32, float16 (<see cref="Float16Weights"/>), bfloat16 bits, Q8_0,
/// Q4_0) in <see cref="HugePageMemory"/>.</summary>
public sealed class CpuBuffer : IDeviceBuffer
{
    /// <summary>The float32 array of an activation or vector buffer; empty for a weight matrix.</summary>
    public float[] Data { get; }
    /// <summary>How a matmul reads the buffer: which one of the memories below holds it.</summary>
    public WeightPrecision Precision { get; }
    /// <summary>Float32 values: <see cref="Data"/>, or a float32 weight matrix.</summary>
    public ReadOnlyMemory<float> Float32 { get; }
    public Float16Weights? F16 { get; private init; }
    public ReadOnlyMemory<ushort> BFloat16 { get; private init; }
    public Q8Weights? Q8 { get; private init; }
    public Q4Weights? Q4 { get; private init; }
    /// <summary>A float16 KV cache's halves (<see cref="Float16CacheValues"/>); null for any other buffer.</summary>
    public Half[]? HalfCache { get; private init; }
    public long Length { get; }

    public CpuBuffer(float[] data) : this(data, data, WeightPrecision.Float32) { }

    private CpuBuffer(float[] data, ReadOnlyMemory<float> float32, WeightPrecision precision)
    {
        Data = data;
        Float32 = float32;
        Precision = precision;
        Length = float32.Length;
    }

    private CpuBuffer(long length, WeightPrecision precision)
    {
        Data = [];
        Precision = precision;
        Length = length;
    }

    public static CpuBuffer Weights(ReadOnlySpan<float> values) =>
        new([], HugePageMemory.CopyOf(values), WeightPrecision.Float32);

    /// <summary>Float16 weights, converted straight into their memory (no array in between).</summary>
    public static CpuBuffer Weights(Float16Weights f16) =>
        new(f16.Halves.Length, WeightPrecision.Float16) { F16 = f16 };

    /// <summary>Bfloat16 weights (their bits), converted straight into their memory.</summary>
    public static CpuBuffer BFloat16Weights(ReadOnlySpan<float> values)
    {
        var bits = HugePageMemory.Allocate<ushort>(values.Length);
        WeightFormat.ToBFloat16(values, bits.Span);
        return new(values.Length, WeightPrecision.BFloat16) { BFloat16 = bits };
    }

    public static CpuBuffer Weights(Q8Weights q8) =>
        new(q8.Quants.Length, WeightPrecision.Q8_0) { Q8 = q8 };

    public static CpuBuffer Weights(Q4Weights q4) =>
        new(q4.Codes.Length * 2L, WeightPrecision.Q4_0) { Q4 = q4 };

    public static CpuBuffer Float16Cache(long length) =>
        new(length, WeightPrecision.Float16) { HalfCache = new Half[length] };

    public void Dispose() { }
}
