using ScratchGpt.Backends.Reference;

namespace ScratchGpt.Backends;

/// <summary>One kernel run on one shape: the largest error against the reference, relative to the reference's largest
/// magnitude; with perf, the op's time (best of three, launches waited for) and its inputs + outputs per
/// second.</summary>
public sealed record KernelCheckResult(string Kernel, string Shape, double MaxAbsError, double RelativeError,
    double? Microseconds = null, double? GigabytesPerSecond = null);
