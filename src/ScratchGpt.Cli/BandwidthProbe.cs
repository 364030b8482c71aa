using System.Diagnostics;
using ScratchGpt.Backends.Cpu;

namespace ScratchGpt.Cli;

/// <summary>
/// The memory bandwidth that <c>bench</c>'s decode floor divides by: copying a 256 MB buffer (bytes read + bytes
/// written), best of five, on all cores, in the same kind of memory as the CPU backend's weights (huge pages where
/// the OS gives them). The buffers are allocated once so that a probe can run just before every timed run: on a
/// shared host the bandwidth one core gets moves by a quarter from one run to the next, and a floor measured at
/// another moment than the run it is set against carries that into decode ÷ floor (docs/benchmarks.md, session 21).
/// </summary>
public sealed class BandwidthProbe
{
    private const int Floats = 1 << 26;
    private readonly Memory<float> _from = HugePageMemory.Allocate<float>(Floats);
    private readonly Memory<float> _to = HugePageMemory.Allocate<float>(Floats);

    public BandwidthProbe()
    {
        _from.Span.Fill(1f);
        _to.Span.Clear();
    }

    /// <summary>Bytes per second: the best of five copies, each core copying its own share.</summary>
    public double Measure()
    {
        double best = 0;
        int parts = Environment.ProcessorCount, share = Floats / parts;
        for (int rep = 0; rep < 5; rep++)
        {
            var sw = Stopwatch.StartNew();
            Parallel.For(0, parts, k => _from.Span.Slice(share * k, share).CopyTo(_to.Span.Slice(share * k, share)));
            best = Math.Max(best, 2.0 * Floats * sizeof(float) / sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>
    /// Decode ÷ floor with each timed run set against the probe taken just before it: run i's floor is
    /// <paramref name="stepBytes"/> ÷ <paramref name="bandwidths"/>[i] a step and its step time 1 ÷
    /// <paramref name="stepsPerSecond"/>[i], so its fraction is stepsPerSecond · stepBytes ÷ bandwidth; the median
    /// over runs (<see cref="BenchCommand.Median"/>, as bench's other medians).
    /// </summary>
    public static double FractionOfFloor(IReadOnlyList<double> stepsPerSecond, IReadOnlyList<double> bandwidths,
        long stepBytes)
    {
        if (stepsPerSecond.Count != bandwidths.Count || stepsPerSecond.Count == 0)
            throw new ArgumentException(
                $"{stepsPerSecond.Count} timed runs and {bandwidths.Count} probes: one probe a run, at least one run");
        return BenchCommand.Median(stepsPerSecond.Select((s, i) => s * stepBytes / bandwidths[i]));
    }
}
