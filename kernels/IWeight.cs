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
