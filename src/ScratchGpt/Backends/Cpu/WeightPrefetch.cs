using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// A decode matmul reads every weight once, from memory, in a few long streams (two a core, <see cref="ColumnPairs"/>).
/// Asking for the cache line <see cref="Distance"/> bytes ahead of the one being read keeps more lines in flight than
/// the hardware prefetcher does alone, most of all where a kernel does much work per line (float16 widened in
/// registers, Q8_0 and Q4_0 block sums), so that one core fetches more of the memory's bandwidth
/// (docs/benchmarks.md, sessions 8 and 24). No effect where the CPU has no prefetch instruction.
/// </summary>
internal static unsafe class WeightPrefetch
{
    public const int Distance = 4096;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Ahead(void* p)
    {
        if (Sse.IsSupported) Sse.Prefetch0((byte*)p + Distance);
    }

    /// <summary><see cref="Ahead(void*)"/> from element i of the weights at <paramref name="weights"/>. A prefetch
    /// never faults, so an address the GC has since moved costs only a wasted request (the model's weights are in
    /// native memory and do not move).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Ahead<T>(ref T weights, int i) => Ahead(Unsafe.AsPointer(ref Unsafe.Add(ref weights, i)));
}
