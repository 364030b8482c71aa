using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>A float16 weight (IEEE binary16).</summary>
public struct Float16Weight : IWeight
{
    public ILGPU.Half Value;
    public readonly float Widen() => (float)Value;
}
