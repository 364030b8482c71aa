using System.Numerics.Tensors;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ScratchGpt.Backends;

/// <summary>
/// What a float16 KV cache stores for a key or value x: x rounded to the nearest half, except that results below
/// float16's normal range (|h| &lt; 2^-14 ≈ 6.1e-5) are stored as zero. The CPU kernels widen halves with integer
/// operations (<see cref="Cpu.CpuKernels.DotHalfPaired"/>), which turn a subnormal half into a subnormal float32,
/// and Intel cores multiply those through a slow microcode assist; a key or value that small adds less to a score or
/// an output than float16's rounding of any entry ≥ 0.125 does. A value beyond float16's range (or NaN) is an error,
/// not an infinity in the cache. Every backend with a float16 cache stores exactly these values.
/// </summary>
public static class Float16CacheValues
{
    /// <summary>The value the cache holds for <paramref name="x"/>, as a float (the reference backend's
    /// storage).</summary>
    public static float Round(float x) => (float)Store(x);

    /// <summary>The half the cache holds for <paramref name="x"/>.</summary>
    public static Half Store(float x)
    {
        Half h = (Half)x;
        ushort bits = BitConverter.HalfToUInt16Bits(h);
        if ((bits & 0x7C00) == 0x7C00) throw OutOfRange(x);
        return (bits & 0x7C00) == 0 ? (Half)0f : h;   // exponent field 0: zero or subnormal
    }

    /// <summary><see cref="Store"/> of every value, vectorized (a decode step writes 2 × n_embd per layer, a prompt
    /// that for each of its tokens).</summary>
    public static void Store(ReadOnlySpan<float> values, Span<Half> halves)
    {
        TensorPrimitives.ConvertToHalf(values, halves);
        var bits = MemoryMarshal.Cast<Half, ushort>(halves[..values.Length]);
        int i = 0;
        var exponentBits = Vector256.Create((ushort)0x7C00);
        for (; Vector256.IsHardwareAccelerated && i + 16 <= bits.Length; i += 16)
        {
            var v = Vector256.Create(bits[i..]);
            var exponent = v & exponentBits;
            if (Vector256.EqualsAny(exponent, exponentBits)) break;   // the scalar loop finds it and says so
            Vector256.AndNot(v, Vector256.Equals(exponent, Vector256<ushort>.Zero)).CopyTo(bits[i..]);
        }
        for (; i < bits.Length; i++) halves[i] = Store(values[i]);
    }

    private static BackendException OutOfRange(float x) =>
        new($"a key or value of {x} does not fit the float16 KV cache (largest 65504); use a float32 cache " +
            "(--kv-cache f32)");
}
