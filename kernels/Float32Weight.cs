using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>A float32 weight, read as it is.</summary>
public struct Float32Weight : IWeight
{
    public float Value;
    public readonly float Widen() => Value;
}
