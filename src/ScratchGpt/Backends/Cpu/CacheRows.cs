namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// How <see cref="CpuKernels.AttentionHead{T, TRows}"/> reads the rows of one KV-cache element type: float32 rows as
/// they are, float16 rows widened in registers. Static members of a struct, so the generic kernel is compiled once
/// per element type with these calls inlined.
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

    /// <summary>One key with four queries side by side (<paramref name="q4"/> = [q0 | q1 | q2 | q3]).</summary>
    static abstract void DotQueries4(ReadOnlySpan<T> key, ReadOnlySpan<float> q4, out float s0, out float s1,
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

    public static void DotQueries4(ReadOnlySpan<float> key, ReadOnlySpan<float> q4, out float s0, out float s1,
        out float s2, out float s3) => CpuKernels.DotRows4(key, q4, out s0, out s1, out s2, out s3);

    public static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<float> v, Span<float> y) =>
        CpuKernels.WeightedSum(w, v, y);
}

/// <summary>A float16 cache (<see cref="Float16CacheValues"/>): the halves widened in registers as float16 weights
/// are (<see cref="CpuKernels.DotHalfPaired"/>), the query reordered and scaled for that once per row.</summary>
internal readonly struct Float16CacheRows : ICacheRows<Half>
{
    public static void PrepareQuery(ReadOnlySpan<float> q, Span<float> prepared) =>
        CpuKernels.PairForHalfDot(q, prepared);

    public static float Dot(ReadOnlySpan<Half> key, ReadOnlySpan<float> q) => CpuKernels.DotHalfPaired(key, q);

    public static void DotKeys4(ReadOnlySpan<Half> keys, ReadOnlySpan<float> q, out float s0, out float s1,
        out float s2, out float s3)
    {
        int d = keys.Length / 4;
        CpuKernels.DotHalfPairedColumns2(keys[..d], keys.Slice(d, d), q, out s0, out s1);
        CpuKernels.DotHalfPairedColumns2(keys.Slice(2 * d, d), keys.Slice(3 * d, d), q, out s2, out s3);
    }

    public static void DotQueries4(ReadOnlySpan<Half> key, ReadOnlySpan<float> q4, out float s0, out float s1,
        out float s2, out float s3)
    {
        int d = key.Length;
        CpuKernels.DotHalfPairedRows2(key, q4[..(2 * d)], out s0, out s1);
        CpuKernels.DotHalfPairedRows2(key, q4.Slice(2 * d, 2 * d), out s2, out s3);
    }

    public static void WeightedSum(ReadOnlySpan<float> w, ReadOnlySpan<Half> v, Span<float> y) =>
        CpuKernels.WeightedSumHalf(w, v, y);
}
