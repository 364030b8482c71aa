namespace ScratchGpt.Loading;

/// <summary>One of GPT-2's tensors as the runtime holds it.</summary>
/// <param name="Name">The checkpoint name without the "transformer." prefix, e.g. "h.0.attn.c_attn.weight".</param>
/// <param name="Shape">The shape held in memory. Linear weights are [out, in], so a matmul reads rows.</param>
/// <param name="IsConv1D">GPT-2's Conv1D weights are stored [in, out] in the checkpoint: transposed on load and
/// save.</param>
/// <param name="IsMatMulWeight">Read by a matmul (the four Conv1D weights, and wte as the tied LM head): kept in
/// the precision the model runs in (float32, float16, bfloat16); every other tensor stays float32.</param>
public sealed record TensorSpec(string Name, int[] Shape, bool IsConv1D, bool IsMatMulWeight)
{
    public long Length => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The shape in the checkpoint file: Conv1D weights [in, out], the rest as held.</summary>
    public int[] CheckpointShape => IsConv1D ? [Shape[1], Shape[0]] : Shape;

    /// <summary>Weight decay applies to matrices (embeddings and linear weights), never to biases or LayerNorm
    /// gains, as in GPT-2 and nanoGPT.</summary>
    public bool Decays => Shape.Length >= 2;
}
