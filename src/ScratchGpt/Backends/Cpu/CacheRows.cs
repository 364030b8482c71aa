using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// How a decode step's attention (<see cref="CpuKernels.AttentionRows{T, TRows}"/>) reads the rows of one KV-cache
/// element type: float32 rows as they are, float16 rows widened in registers. Static members of a struct, so the
/// generic kernel is compiled once per element type with these calls inlined. (A prompt's rows over a float16 cache
/// widen the head's blocks once and take the float32 kernel: see <see cref="CpuBackend.Attention"/>.)
/// </summary>
internal interface ICacheRows<T> where T : unmanaged
{
    /// <summary>A query (<paramref name="q"/>, headDim floats) in the form the dots below take.</summary>
    static abstract void PrepareQuery(ReadOnlySpan<float> q, Span<float> prepared);

    /// <summary>key · q.</summary>
    static abstract float Dot(ReadOnlySpan<T> key, ReadOnlySpan<float> q);

    /// <summary>Four adjacent keys (<paramref name="keys"/> = [k0 | k1 | k2 | k3]) with one query.</summary>
    static abstract void DotKeys4(ReadOnlySpan<T> keys, ReadOnlySpan<float> q, out float s0, out float s1,
        out float s2, out float s3);

    /// <summary>y = Σ_t w[t] · v[t, :], v being [w.Length, y.Length].</summary>
    static abstract void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<T> v, Span<float> y);
}

/// <summary>A float32 cache: <see cref="CpuKernels.DotRows4"/> and <see cref="CpuKernels.WeightedSum"/> on the
/// values as stored.</summary>
internal readonly struct Float32CacheRows : ICacheRows<float>
{
    public static void PrepareQuery(ReadOnlySpan<float> q, Span<float> prepared) => q.CopyTo(prepared);

    public static float Dot(ReadOnlySpan<float> key, ReadOnlySpan<float> q) => CpuKernels.Dot(q, key);

    public static void DotKeys4(ReadOnlySpan<float> keys, ReadOnlySpan<float> q, out float s0, out float s1,
        out float s2, out float s3) => CpuKernels.DotRows4(q, keys, out s0, out s1, out s2, out s3);

    public static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<float> v, Span<float> y) =>
        CpuKernels.WeightedSum(w, v, y);
}

/// <summary>
/// A float16 cache (<see cref="Float16CacheValues"/>): the halves widened in registers as float16 weights are
/// (<see cref="CpuKernels.DotHalfPaired"/>: a half in the top of a 32-bit lane, shifted right by 3 and masked, is its
/// value × 2^-112), the query reordered and scaled for that once per row. A decode step's attention is bound by these
/// instructions rather than by memory once the cache holds halves, so with AVX-512 each 32 halves are widened in one
/// 512-bit register (the query then ordered per 32: [x0, x2, …, x30, x1, x3, …, x31]); the 256-bit forms take what
/// is left of a row (of a key below 32 halves, of the weighted sum below 64 outputs) and everything on other CPUs.
/// </summary>
internal readonly struct Float16CacheRows : ICacheRows<Half>
{
    private static bool Wide => Vector512.IsHardwareAccelerated;

    public static void PrepareQuery(ReadOnlySpan<float> q, Span<float> prepared)
    {
        int k = Wide ? CpuKernels.PairBlocks(q, prepared, 32) : 0;
        CpuKernels.PairForHalfDot(q[k..], prepared[k..]);
    }

    public static float Dot(ReadOnlySpan<Half> key, ReadOnlySpan<float> q)
    {
        if (!Wide) return CpuKernels.DotHalfPaired(key, q);
        int n = key.Length, k = 0;
        ref ushort pk = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(key));
        ref float pq = ref MemoryMarshal.GetReference(q);
        Vector512<float> even = default, odd = default;
        for (; k + 32 <= n; k += 32)
        {
            var u = Load(ref pk, k);
            even = Fma(Even(u), Vector512.LoadUnsafe(ref pq, (nuint)k), even);
            odd = Fma(Odd(u), Vector512.LoadUnsafe(ref pq, (nuint)k + 16), odd);
        }
        return Sum(even, odd) + Rest(key, q, k);
    }

    public static void DotKeys4(ReadOnlySpan<Half> keys, ReadOnlySpan<float> q, out float s0, out float s1,
        out float s2, out float s3)
    {
        int d = keys.Length / 4;
        if (!Wide)
        {
            CpuKernels.DotHalfPairedColumns2(keys[..d], keys.Slice(d, d), q, out s0, out s1, streamed: false);
            CpuKernels.DotHalfPairedColumns2(keys.Slice(2 * d, d), keys.Slice(3 * d, d), q, out s2, out s3,
                streamed: false);
            return;
        }
        // The query's 32 values are loaded once for the four keys; two accumulators a key, eight FMA chains.
        ref ushort p0 = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(keys));
        ref float pq = ref MemoryMarshal.GetReference(q);
        Vector512<float> e0 = default, o0 = default, e1 = default, o1 = default, e2 = default, o2 = default,
            e3 = default, o3 = default;
        int k = 0;
        for (; k + 32 <= d; k += 32)
        {
            var qe = Vector512.LoadUnsafe(ref pq, (nuint)k);
            var qo = Vector512.LoadUnsafe(ref pq, (nuint)k + 16);
            var u = Load(ref p0, k);
            e0 = Fma(Even(u), qe, e0); o0 = Fma(Odd(u), qo, o0);
            u = Load(ref p0, d + k);
            e1 = Fma(Even(u), qe, e1); o1 = Fma(Odd(u), qo, o1);
            u = Load(ref p0, 2 * d + k);
            e2 = Fma(Even(u), qe, e2); o2 = Fma(Odd(u), qo, o2);
            u = Load(ref p0, 3 * d + k);
            e3 = Fma(Even(u), qe, e3); o3 = Fma(Odd(u), qo, o3);
        }
        // all four reduced before any call, so that no accumulator lives across one (the JIT would keep it in memory)
        s0 = Sum(e0, o0); s1 = Sum(e1, o1); s2 = Sum(e2, o2); s3 = Sum(e3, o3);
        if (k == d) return;
        s0 += Rest(keys[..d], q, k);
        s1 += Rest(keys.Slice(d, d), q, k);
        s2 += Rest(keys.Slice(2 * d, d), q, k);
        s3 += Rest(keys.Slice(3 * d, d), q, k);
    }

    public static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<Half> v, Span<float> y)
    {
        int n = y.Length, d = 0;
        // × 2^112 against the widening's 2^-112 (read once: a static read in the loop can cost a check per position)
        float up = CpuKernels.TwoTo112;
        if (Wide)
        {
            ref ushort pv = ref Unsafe.As<Half, ushort>(ref MemoryMarshal.GetReference(v));
            for (; d + 64 <= n; d += 64)   // 64 outputs in four registers
            {
                Vector512<float> e0 = default, o0 = default, e1 = default, o1 = default;
                for (int t = 0; t < w.Length; t++)
                {
                    var wt = Vector512.Create(w[t] * up);
                    var u = Load(ref pv, t * n + d);
                    e0 = Fma(wt, Even(u), e0); o0 = Fma(wt, Odd(u), o0);
                    u = Load(ref pv, t * n + d + 32);
                    e1 = Fma(wt, Even(u), e1); o1 = Fma(wt, Odd(u), o1);
                }
                Interleave(e0, o0, y.Slice(d, 32));
                Interleave(e1, o1, y.Slice(d + 32, 32));
            }
        }
        // fewer than 64 outputs left (none for gpt2's heads of 64): the 256-bit form
        if (d < n) CpuKernels.WeightedSumHalf(w, v[d..], stride: n, y[d..]);
    }

    /// <summary>Σ (even + odd) × 2^56 (the query's scale is 2^56, the widened halves' 2^-112): halves folded onto
    /// halves down to four lanes, then those summed.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static float Sum(Vector512<float> even, Vector512<float> odd)
    {
        var sum = even + odd;
        var s256 = sum.GetLower() + sum.GetUpper();
        return Vector128.Sum(s256.GetLower() + s256.GetUpper()) * CpuKernels.XScale;
    }

    /// <summary>The dot of what a 512-bit loop left of a key (from <paramref name="k"/>, in 256-bit pairing).</summary>
    private static float Rest(ReadOnlySpan<Half> key, ReadOnlySpan<float> q, int k) =>
        k < key.Length ? CpuKernels.DotHalfPaired(key[k..], q[k..]) : 0f;

    /// <summary>Halves i .. i + 31 as sixteen 32-bit lanes (half i + 2j in the low bits of lane j).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<int> Load(ref ushort halves, int i) =>
        Vector512.LoadUnsafe(ref Unsafe.As<ushort, int>(ref Unsafe.Add(ref halves, i)));

    /// <summary>The even halves of 32 (the low 16 bits of each lane) as floats × 2^-112.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Even(Vector512<int> u) => Odd(Vector512.ShiftLeft(u, 16));

    /// <summary>The odd halves of 32 (the top 16 bits of each lane) as floats × 2^-112.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Odd(Vector512<int> u) =>
        (Vector512.ShiftRightArithmetic(u, 3) & Vector512.Create(unchecked((int)0x8FFFE000))).AsSingle();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector512<float> Fma(Vector512<float> a, Vector512<float> b, Vector512<float> c) =>
        Vector512.FusedMultiplyAdd(a, b, c);

    /// <summary>y32 = [even[0], odd[0], even[1], odd[1], …].</summary>
    private static void Interleave(Vector512<float> even, Vector512<float> odd, Span<float> y32)
    {
        CpuKernels.Interleave(even.GetLower(), odd.GetLower(), y32[..16]);
        CpuKernels.Interleave(even.GetUpper(), odd.GetUpper(), y32[16..]);
    }
}
