using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>A bfloat16 weight: the upper 16 bits of a float32 (ILGPU 1.5 has no bfloat16 type).</summary>
public struct BFloat16Weight : IWeight
{
    public ushort Bits;
    public readonly float Widen() => Interop.IntAsFloat((uint)Bits << 16);
}
