namespace ScratchGpt.Backends;

/// <summary>What a matmul does with its result r = x·Wᵀ + b (the same codes select the epilogue in
/// kernels/MatMul.cs).</summary>
public enum MatMulEpilogue
{
    /// <summary>y = r</summary>
    Store = 0,
    /// <summary>y = gelu_new(r): the MLP's first layer and its activation in one launch.</summary>
    Gelu = 1,
    /// <summary>y += r: a projection and its residual connection in one launch.</summary>
    AddToOutput = 2,
}
