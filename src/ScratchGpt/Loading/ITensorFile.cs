namespace ScratchGpt.Loading;

/// <summary>A checkpoint file that holds named tensors: model.safetensors, or a PyTorch pytorch_model.bin.</summary>
public interface ITensorFile : IDisposable
{
    string Path { get; }
    IReadOnlyDictionary<string, TensorInfo> Tensors { get; }

    /// <summary>A floating-point tensor widened (or rounded) to float32, into <paramref name="dst"/> of its element
    /// count.</summary>
    void ReadFloat32(TensorInfo t, Span<float> dst);
}
