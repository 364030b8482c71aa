using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>
/// How a kernel reads one weight. Weight matrices (and the token embedding) may stay 16-bit on the device: half
/// the bytes to read per token. A kernel that reads weights is generic over the element type, and ILGPU compiles
/// one specialisation per type, so the widening costs no branch: float16 becomes one hardware conversion
/// (<c>cvt.f32.f16</c> in PTX), bfloat16 a 16-bit shift (it is the top half of a float32).
/// </summary>
public interface IWeight
{
    float Widen();
}

/// <summary>A float32 weight, read as it is.</summary>
public struct Float32Weight : IWeight
{
    public float Value;
    public readonly float Widen() => Value;
}

/// <summary>A float16 weight (IEEE binary16).</summary>
public struct Float16Weight : IWeight
{
    public ILGPU.Half Value;
    public readonly float Widen() => (float)Value;
}

/// <summary>A bfloat16 weight: the upper 16 bits of a float32 (ILGPU 1.5 has no bfloat16 type).</summary>
public struct BFloat16Weight : IWeight
{
    public ushort Bits;
    public readonly float Widen() => Interop.IntAsFloat((uint)Bits << 16);
}
