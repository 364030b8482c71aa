using ILGPU;

namespace ScratchGpt.Kernels;

/// <summary>Element-wise kernels. Launch: a thread per element (grid-stride), groups of 256.</summary>
public static class Elementwise
{
    /// <summary>x += y (the residual connection).</summary>
    public static void Add(ArrayView<float> x, ArrayView<float> y, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += GridStride.Threads) x[i] += y[i];
    }

    /// <summary>x *= y (dropout: y is the mask, 0 or 1/(1 − p)).</summary>
    public static void Multiply(ArrayView<float> x, ArrayView<float> y, int n)
    {
        for (int i = Grid.GlobalIndex.X; i < n; i += GridStride.Threads) x[i] *= y[i];
    }
}
