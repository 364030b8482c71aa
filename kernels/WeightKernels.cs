using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace ScratchGpt.Kernels;

/// <summary>The kernels that read weights, loaded for one weight type.</summary>
public sealed class WeightKernels<TWeight> where TWeight : unmanaged, IWeight
{
    public readonly Action<KernelConfig, ArrayView<int>, int, int, ArrayView<TWeight>, ArrayView<float>,
        ArrayView<float>, int, int> Embedding;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<TWeight>, ArrayView<float>, int, ArrayView<float>,
        int, int, int> MatVec, MatVecPerThread;
    public readonly Action<KernelConfig, ArrayView<float>, ArrayView<TWeight>, ArrayView<float>, int, ArrayView<float>,
        int, int, int, int> MatMulTiled;

    public WeightKernels(Accelerator a)
    {
        Embedding = a.LoadStreamKernel<ArrayView<int>, int, int, ArrayView<TWeight>, ArrayView<float>, ArrayView<float>,
            int, int>(Kernels.Embedding.Forward);
        MatVec = a.LoadStreamKernel<ArrayView<float>, ArrayView<TWeight>, ArrayView<float>, int, ArrayView<float>, int,
            int, int>(MatMul.Vector);
        MatVecPerThread = a.LoadStreamKernel<ArrayView<float>, ArrayView<TWeight>, ArrayView<float>, int,
            ArrayView<float>, int, int, int>(MatMul.VectorPerThread);
        MatMulTiled = a.LoadStreamKernel<ArrayView<float>, ArrayView<TWeight>, ArrayView<float>, int, ArrayView<float>,
            int, int, int, int>(MatMul.Tiled);
    }
}
