using ScratchGpt.Loading;

namespace ScratchGpt.Training;

/// <summary>One tensor of <see cref="Gpt2Layout"/> inside <see cref="Gpt2Parameters.Values"/>, at
/// <paramref name="Offset"/>.</summary>
public sealed record ParameterTensor(TensorSpec Spec, int Offset)
{
    public string Name => Spec.Name;
    public int[] Shape => Spec.Shape;
    public bool IsConv1D => Spec.IsConv1D;
    public bool Decays => Spec.Decays;
    public int Length => (int)Spec.Length;

    public Span<float> Of(float[] values) => values.AsSpan(Offset, Length);
    public Memory<float> MemoryOf(float[] values) => values.AsMemory(Offset, Length);
}
