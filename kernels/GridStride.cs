using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>
/// Every kernel loops over its work with a grid stride, so a launch may use fewer groups than there are items: a
/// GPU gets a few groups per multiprocessor, ILGPU's CPU accelerator (where each group costs milliseconds of
/// thread hand-offs) gets a couple, and each group walks on until the work is done.
///   thread-per-item kernels: for (i = Grid.GlobalIndex.X; i &lt; n; i += <see cref="Threads"/>)
///   group-per-item kernels:  for (item = Grid.IdxX; item &lt; count; item += Grid.DimX)
/// </summary>
public static class GridStride
{
    /// <summary>All the threads of the launch: the stride of a thread-per-item loop.</summary>
    public static int Threads => Grid.DimX * Group.DimX;
}
