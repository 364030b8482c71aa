namespace ScratchGpt.Model;

/// <summary>One activation of a forward pass, as a hook sees it: its TransformerLens name, its shape (batch of one
/// first) and its values, row-major. A hook may write into <see cref="Values"/>; see <see cref="ForwardHooks"/>
/// for which activations the rest of the pass then reads.</summary>
public sealed record Activation(string Name, int[] Shape, float[] Values);
