using ILGPU;
using ILGPU.Algorithms;

namespace ScratchGpt.Kernels;

/// <summary>
/// GPT-2's gelu_new and its derivative, element-wise. Launch: a thread per element (grid-stride), groups of 256.
///   gelu_new(x)  = 0.5 x (1 + tanh(u)),  u = √(2/π) (x + 0.044715 x³)
///   gelu_new'(x) = 0.5 (1 + t) + 0.5 x (1 − t²) √(2/π) (1 + 3 · 0.044715 x²),  t = tanh(u)
/// </summary>
public static class Gelu
{
    private const float SqrtTwoOverPi = 0.7978845608028654f;

    public static float GeluNew(float x) => 0.5f * x * (1f + XMath.Tanh(SqrtTwoOverPi * (x + 0.044715f * x * x * x)));

    /// <summary>x = gelu_new(x), in place.</summary>
    public static void Forward(ArrayView<float> x, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += GridStride.Threads) x[i] = GeluNew(x[i]);
    }

    /// <summary>d = d · gelu_new'(x), in place: the gradient through the activation.</summary>
    public static void Backward(ArrayView<float> x, ArrayView<float> d, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += GridStride.Threads)
        {
            float v = x[i];
            float t = XMath.Tanh(SqrtTwoOverPi * (v + 0.044715f * v * v * v));
            d[i] *= 0.5f * (1f + t) + 0.5f * v * (1f - t * t) * SqrtTwoOverPi * (1f + 3f * 0.044715f * v * v);
        }
    }
}
