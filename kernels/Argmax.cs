using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>
/// result[0] = the index of the largest of x[0..n) (the lowest index on ties, as torch.argmax): a greedy step brings
/// back one int. One group of <see cref="Threads"/>: each thread scans a strided slice, then a tree reduction keeps
/// the larger value, or on a tie the lower index.
/// </summary>
public static class Argmax
{
    public const int Threads = 256;

    public static void Forward(ArrayView<float> x, int n, ArrayView<int> result)
    {
        var bestValue = SharedMemory.Allocate<float>(Threads);
        var bestIndex = SharedMemory.Allocate<int>(Threads);
        int tid = Group.IdxX;
        float bv = float.NegativeInfinity;
        int bi = n;
        for (int i = tid; i < n; i += Threads)
            if (x[i] > bv || (x[i] == bv && i < bi)) { bv = x[i]; bi = i; }
        bestValue[tid] = bv;
        bestIndex[tid] = bi;
        Group.Barrier();
        for (int stride = Threads / 2; stride > 0; stride /= 2)
        {
            if (tid < stride)
            {
                float ov = bestValue[tid + stride];
                int oi = bestIndex[tid + stride];
                if (ov > bestValue[tid] || (ov == bestValue[tid] && oi < bestIndex[tid]))
                {
                    bestValue[tid] = ov;
                    bestIndex[tid] = oi;
                }
            }
            Group.Barrier();
        }
        if (tid == 0) result[0] = bestIndex[0];
    }
}
