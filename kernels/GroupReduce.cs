using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// Tree reductions over one work-group through shared memory: each of the <c>threads</c> threads writes its
/// partial value, then halving strides add (or max) pairs until slot 0 holds the result, which every thread
/// returns. Shared memory rather than warp shuffles, so the same kernel runs on any OpenCL device.
/// <c>threads</c> is a power of two and the group's size.
/// </summary>
public static class GroupReduce
{
    public static float Sum(ArrayView<float> scratch, float value, int threads)
    {
        int tid = Group.IdxX;
        scratch[tid] = value;
        Group.Barrier();
        for (int stride = threads / 2; stride > 0; stride /= 2)
        {
            if (tid < stride) scratch[tid] += scratch[tid + stride];
            Group.Barrier();
        }
        float result = scratch[0];
        Group.Barrier();   // all have read slot 0 before the scratch is reused
        return result;
    }

    public static float Max(ArrayView<float> scratch, float value, int threads)
    {
        int tid = Group.IdxX;
        scratch[tid] = value;
        Group.Barrier();
        for (int stride = threads / 2; stride > 0; stride /= 2)
        {
            if (tid < stride) scratch[tid] = XMath.Max(scratch[tid], scratch[tid + stride]);
            Group.Barrier();
        }
        float result = scratch[0];
        Group.Barrier();
        return result;
    }
}
