namespace ScratchGpt.Loading;

/// <summary>One entry of a safetensors header: dtype, shape and where its bytes lie in the data section.</summary>
public sealed record TensorInfo(string Name, SafetensorsDType DType, long[] Shape, long Begin, long End)
{
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    public long ByteLength => End - Begin;
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
