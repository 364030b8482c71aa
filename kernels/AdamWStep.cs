using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>The scalars of one AdamW step (see <see cref="Optimizer.AdamW"/>).</summary>
public struct AdamWStep
{
    public float LearningRate, Beta1, Beta2, Epsilon;
    /// <summary>1 − lr · weight_decay for matrices, 1 for biases and layer-norm weights.</summary>
    public float Decay;
    /// <summary>Bias corrections 1 − β₁^step and 1 − β₂^step.</summary>
    public float Correction1, Correction2;
    /// <summary>Below 1 when the global gradient norm is clipped.</summary>
    public float GradScale;
}
