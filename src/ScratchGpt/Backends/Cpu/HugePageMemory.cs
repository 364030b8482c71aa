using System.Runtime.InteropServices;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// Memory for the CPU backend's weight matrices, on 2 MiB pages where the OS gives them. A decode step streams
/// every weight once from memory; on 4 KiB pages that is a TLB miss every 4 KiB and the hardware prefetchers stop
/// at every page boundary, so one core streamed gpt2's Q8_0 matrices at ~21 GB/s where 2 MiB pages give ~27
/// (docs/benchmarks.md). On Linux a block is a 2 MiB-aligned stretch of a pinned array, advised for transparent
/// huge pages (madvise MADV_HUGEPAGE, which works under the default THP setting "madvise") before anything is
/// written to it, so that the first writes fault in whole 2 MiB pages, and collapsed onto them at once
/// (MADV_COLLAPSE) where the GC hands back memory that already has its pages. It stays an ordinary managed array:
/// the GC keeps it alive for every span over it and frees it, and if the advice is refused (THP "never", a kernel
/// before 6.1 given recycled memory, another OS) it simply works on 4 KiB pages.
/// </summary>
public static class HugePageMemory
{
    public const int PageBytes = 2 << 20;

    /// <summary>The pages a block of <paramref name="bytes"/> gets: rounded up to whole pages where that wastes less
    /// than a quarter of the block (a 1.8 MB matrix takes one page), otherwise the whole pages inside it, the tail
    /// staying on ordinary pages (a 2.4 MB matrix gets one huge page, not two of which one mostly empty). Blocks
    /// under 0.8 of a page get none.</summary>
    public static long HugePages(long bytes)
    {
        long up = (bytes + PageBytes - 1) / PageBytes;
        return (up * PageBytes - bytes) * 4 < bytes ? up : bytes / PageBytes;
    }

    /// <summary><paramref name="length"/> values, not zeroed: the caller writes all of them. A block too small for
    /// a page of its own shares pages with others (<see cref="SharedPages{T}"/>).</summary>
    public static unsafe Memory<T> Allocate<T>(int length) where T : unmanaged
    {
        long bytes = (long)length * sizeof(T), pages = HugePages(bytes);
        if (!OperatingSystem.IsLinux()) return new T[length];
        if (pages == 0) return SharedPages<T>.Take(length);
        // a page more than needed, so that the block can start on a page boundary inside the array
        long arrayBytes = Math.Max(bytes, pages * PageBytes) + PageBytes;
        var array = GC.AllocateUninitializedArray<T>(checked((int)(arrayBytes / sizeof(T))), pinned: true);
        fixed (T* p = array)   // the pinned object heap never moves it, so the address holds after this block
        {
            long start = ((long)p + PageBytes - 1) / PageBytes * PageBytes;
            Advise((void*)start, pages * PageBytes);
            return array.AsMemory((int)((start - (long)p) / sizeof(T)), length);
        }
    }

    /// <summary>
    /// Blocks too small for a page of their own, packed side by side on shared 2 MiB pages: gpt2's 768 × 768
    /// attention projection (1.2 MB as float16, 0.6 MB as Q8_0) and every Q8_0 / Q4_0 matrix's scales would
    /// otherwise be read from 4 KiB pages at every decode step, and on them one core streamed the projection at ~16
    /// GB/s where the larger matrices beside it ran at ~26 (docs/benchmarks.md). One chunk of
    /// <see cref="ChunkPages"/> pages per element type at a time; each block starts on a cache line. A chunk lives
    /// as long as a block in it.
    /// </summary>
    private static class SharedPages<T> where T : unmanaged
    {
        private static readonly Lock Gate = new();
        private static Memory<T> rest;   // what the current chunk has not handed out

        public static unsafe Memory<T> Take(int length)
        {
            int line = Math.Max(1, 64 / sizeof(T)), padded = (length + line - 1) / line * line;
            lock (Gate)
            {
                if (rest.Length < padded) rest = Allocate<T>(ChunkPages * PageBytes / sizeof(T));
                var block = rest[..length];
                rest = rest[padded..];
                return block;
            }
        }
    }

    /// <summary>Pages per chunk of <see cref="SharedPages{T}"/>: a block that gets no page of its own is under 0.8
    /// of one, so a chunk holds at least five and wastes at most one's room at its end.</summary>
    private const int ChunkPages = 4;

    /// <summary>A copy of <paramref name="values"/> in memory from <see cref="Allocate{T}"/>.</summary>
    public static Memory<T> CopyOf<T>(ReadOnlySpan<T> values) where T : unmanaged
    {
        var memory = Allocate<T>(values.Length);
        values.CopyTo(memory.Span);
        return memory;
    }

    /// <summary>Asks for 2 MiB pages for a page-aligned stretch. MADV_HUGEPAGE alone only shapes the pages that
    /// later writes fault in, and the pinned heap often hands out memory the GC has already used (a model's loading
    /// frees large temporary arrays): those stretches kept their 4 KiB pages, half of gpt2's float32 layers in one
    /// measurement. MADV_COLLAPSE (Linux 6.1 and later) then puts the stretch on huge pages now, whether touched or
    /// not.</summary>
    internal static unsafe void Advise(void* start, long bytes)
    {
        // Only advice: a refusal (non-zero result, or an older kernel's EINVAL) leaves ordinary pages, which work
        // the same, slower.
        try
        {
            _ = madvise(start, (nuint)bytes, MadvHugePage);
            _ = madvise(start, (nuint)bytes, MadvCollapse);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { }
    }

    private const int MadvHugePage = 14, MadvCollapse = 25;

    [DllImport("libc", SetLastError = true)]
    private static extern unsafe int madvise(void* address, nuint length, int advice);
}
