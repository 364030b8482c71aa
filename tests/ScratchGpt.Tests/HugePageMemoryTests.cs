using ScratchGpt.Backends;
using ScratchGpt.Backends.Cpu;

namespace ScratchGpt.Tests;

/// <summary>The CPU backend's weight memory: 2 MiB pages on Linux, a block's own where it is big enough, shared
/// with other small blocks otherwise, and the weights in it read back as written.</summary>
public class HugePageMemoryTests
{
    [Theory]
    [InlineData(9 * HugePageMemory.PageBytes / 40)]        // 0.9 of a page: rounded up to one
    [InlineData(3 * HugePageMemory.PageBytes / 4 + 5)]     // three pages and a bit: three, the bit on ordinary pages
    public unsafe void Blocks_with_huge_pages_start_on_a_page_and_hold_what_is_written(int length)
    {
        Assert.True(HugePageMemory.HugePages(4L * length) > 0);
        var memory = HugePageMemory.Allocate<float>(length);
        Assert.Equal(length, memory.Length);
        for (int i = 0; i < length; i++) memory.Span[i] = i;
        GC.Collect();   // pinned: a collection moves nothing
        for (int i = 0; i < length; i += 4099) Assert.Equal(i, memory.Span[i]);
        Assert.Equal(length - 1, memory.Span[length - 1]);
        fixed (float* p = memory.Span)
            if (OperatingSystem.IsLinux()) Assert.Equal(0, (long)p % HugePageMemory.PageBytes);
    }

    [Theory]
    [InlineData(1, 0)]
    [InlineData(HugePageMemory.PageBytes * 7L / 10, 0)]          // rounding up would waste 30%
    [InlineData(HugePageMemory.PageBytes * 9L / 10, 1)]
    [InlineData(HugePageMemory.PageBytes * 12L / 10, 1)]         // 1.2 pages: one page, the rest ordinary
    [InlineData(HugePageMemory.PageBytes * 19L / 10, 2)]
    [InlineData(HugePageMemory.PageBytes * 40L, 40)]
    public void A_block_is_rounded_up_to_whole_pages_only_where_that_wastes_under_a_quarter(long bytes, long pages) =>
        Assert.Equal(pages, HugePageMemory.HugePages(bytes));

    [Fact]
    public unsafe void Small_blocks_share_huge_pages_each_on_its_own_cache_lines()
    {
        // The shared chunk is per element type and process-wide: a type no other code allocates, so that the three
        // blocks start a chunk of their own whatever the tests running beside this one have taken (Half blocks —
        // Q8_0 scales, float16 matrices — leave the current chunk's room unknown).
        // 0.7 of a page: too small for a page of its own
        var a = HugePageMemory.Allocate<Cell>(HugePageMemory.PageBytes * 7 / 20);
        var b = HugePageMemory.Allocate<Cell>(33);
        var c = HugePageMemory.Allocate<Cell>(HugePageMemory.PageBytes * 7 / 20);
        if (!OperatingSystem.IsLinux())
        {
            Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<Cell>(a, out var own));
            Assert.Equal(a.Length, own.Array!.Length);
            return;
        }
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<Cell>(a, out var sa));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<Cell>(b, out var sb));
        Assert.True(System.Runtime.InteropServices.MemoryMarshal.TryGetArray<Cell>(c, out var sc));
        Assert.Same(sa.Array, sb.Array);   // one chunk of pages for all three
        Assert.Same(sa.Array, sc.Array);
        Assert.Equal(new[] { a.Length, 33, c.Length }, new[] { sa.Count, sb.Count, sc.Count });
        Assert.True(sa.Offset + sa.Count <= sb.Offset && sb.Offset + sb.Count <= sc.Offset);
        a.Span.Fill(new Cell(1)); b.Span.Fill(new Cell(2)); c.Span.Fill(new Cell(3));
        Assert.Equal(new Cell(1), a.Span[^1]);
        Assert.Equal(new Cell(2), b.Span[0]);
        Assert.Equal(new Cell(2), b.Span[^1]);
        Assert.Equal(new Cell(3), c.Span[0]);
        fixed (Cell* pa = a.Span) fixed (Cell* pb = b.Span) fixed (Cell* pc = c.Span)
        {
            Assert.Equal(0, (long)pa % 64);
            Assert.Equal(0, (long)pb % 64);
            Assert.Equal(0, (long)pc % 64);
        }
    }

    /// <summary>A two-byte element only <see cref="Small_blocks_share_huge_pages_each_on_its_own_cache_lines"/>
    /// allocates.</summary>
    private readonly record struct Cell(short Value);

    [Fact]
    public unsafe void Memory_that_already_has_small_pages_is_moved_onto_huge_pages()
    {
        // The pinned heap often hands out memory the GC has used before, already on 4 KiB pages; MADV_HUGEPAGE alone
        // leaves those, MADV_COLLAPSE (Linux 6.1+) moves them now. Where neither can act there is nothing to check.
        if (!OperatingSystem.IsLinux() || Environment.OSVersion.Version < new Version(6, 1)) return;
        const string thp = "/sys/kernel/mm/transparent_hugepage/enabled";
        if (!File.Exists(thp) || File.ReadAllText(thp).Contains("[never]")) return;
        const int page = HugePageMemory.PageBytes;
        var array = GC.AllocateUninitializedArray<byte>(3 * page, pinned: true);
        array.AsSpan().Fill(1);   // every 4 KiB page faulted in
        fixed (byte* p = array)
        {
            long start = ((long)p + page - 1) / page * page;
            HugePageMemory.Advise((void*)start, page);
            Assert.Equal(1, ((byte*)start)[page - 1]);   // the contents stay
            Assert.True(AnonHugeKiB(start) >= page / 1024, $"{AnonHugeKiB(start)} KiB of huge pages at {start:x}");
        }
        GC.KeepAlive(array);
    }

    /// <summary>AnonHugePages of the mapping holding <paramref name="address"/>, from /proc/self/smaps.</summary>
    private static long AnonHugeKiB(long address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-'), space = line.IndexOf(' ');
            if (dash > 0 && space > dash && Uri.IsHexDigit(line[0]) && line[..dash].All(Uri.IsHexDigit))
            {
                long a = Convert.ToInt64(line[..dash], 16), b = Convert.ToInt64(line[(dash + 1)..space], 16);
                inside = a <= address && address < b;
            }
            else if (inside && line.StartsWith("AnonHugePages:", StringComparison.Ordinal))
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }
        return 0;
    }

    [Theory]
    [InlineData(WeightPrecision.Float32)]
    [InlineData(WeightPrecision.Float16)]
    [InlineData(WeightPrecision.BFloat16)]
    [InlineData(WeightPrecision.Q8_0)]
    public void A_weight_matrix_on_huge_pages_multiplies_as_the_reference_backend_does(WeightPrecision precision)
    {
        // 4096 × 768: 12.6 MB as float32, 3.1 MB of Q8_0 bytes, so every format gets huge pages
        const int inDim = 768, outDim = 4096;
        var rng = new Random(3);
        float[] w = Enumerable.Range(0, inDim * outDim).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        float[] x = Enumerable.Range(0, 2 * inDim).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        var cpu = new CpuBackend();
        var reference = new Backends.Reference.ReferenceBackend();
        float[] Run(IBackend be, float[] input)
        {
            using var wb = be.UploadWeight(w, precision);
            using var xb = be.Upload(input);
            using var yb = be.Allocate(2 * outDim);
            be.MatMul(xb, wb, null, yb, 2, inDim, outDim);
            var y = new float[2 * outDim];
            be.Download(yb, 0, y);
            return y;
        }
        // the CPU's Q8_0 matmul also rounds the input to Q8_0 (as llama.cpp does); the reference is given it so
        float[] rounded = new float[x.Length];
        CpuKernels.RoundTripQ8(x, rounded);
        float[] got = Run(cpu, x), want = Run(reference, precision == WeightPrecision.Q8_0 ? rounded : x);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(got[i] - want[i]) <= 1e-4f * (1 + Math.Abs(want[i])), $"{i}: {got[i]} vs {want[i]}");
    }
}
