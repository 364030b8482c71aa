using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ScratchGpt.Loading;

/// <summary>
/// Writes a .safetensors file: tensors in name order with no gaps, header padded with spaces to a
/// multiple of 8. The file is written under a temporary name and renamed when complete, so a crash
/// never leaves a half-written file under the final name.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly SortedDictionary<string,
        (SafetensorsDType DType, long[] Shape, byte[] Bytes)> _tensors = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new() { ["format"] = "pt" };

    public SafetensorsWriter AddFloat32(string name, long[] shape, ReadOnlySpan<float> data) =>
        Add(name, SafetensorsDType.F32, shape, MemoryMarshal.AsBytes(data).ToArray());

    public SafetensorsWriter AddFloat16(string name, long[] shape, ReadOnlySpan<float> data) =>
        Add(name, SafetensorsDType.F16, shape, DTypeConversion.FloatToHalfBytes(data));

    public SafetensorsWriter AddBFloat16(string name, long[] shape, ReadOnlySpan<float> data)
    {
        var b = new ushort[data.Length];
        for (int i = 0; i < b.Length; i++) b[i] = DTypeConversion.FloatToBFloat16(data[i]);
        return Add(name, SafetensorsDType.BF16, shape, MemoryMarshal.AsBytes(b.AsSpan()).ToArray());
    }

    public SafetensorsWriter AddInt64(string name, long[] shape, ReadOnlySpan<long> data) =>
        Add(name, SafetensorsDType.I64, shape, MemoryMarshal.AsBytes(data).ToArray());

    public SafetensorsWriter Add(string name, SafetensorsDType dtype, long[] shape, byte[] bytes)
    {
        long count = shape.Aggregate(1L, (a, b) => checked(a * b));
        if (count * dtype.Size() != bytes.Length)
            throw new ArgumentException($"tensor '{name}': shape [{string.Join(", ", shape)}] does not match " +
                $"{bytes.Length} bytes of {dtype.Name()}");
        _tensors[name] = (dtype, shape, bytes);
        return this;
    }

    public void Save(string path)
    {
        using var json = new MemoryStream();
        using (var w = new Utf8JsonWriter(json))
        {
            w.WriteStartObject();
            w.WriteStartObject("__metadata__");
            foreach (var (k, v) in _metadata) w.WriteString(k, v);
            w.WriteEndObject();
            long offset = 0;
            foreach (var (name, t) in _tensors)
            {
                w.WriteStartObject(name);
                w.WriteString("dtype", t.DType.Name());
                w.WriteStartArray("shape"); foreach (long d in t.Shape) w.WriteNumberValue(d); w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + t.Bytes.Length);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += t.Bytes.Length;
            }
            w.WriteEndObject();
        }
        var header = new List<byte>(json.ToArray());
        while (header.Count % 8 != 0) header.Add((byte)' ');

        AtomicFile.Write(path, stream =>
        {
            stream.Write(BitConverter.GetBytes((ulong)header.Count));
            stream.Write(header.ToArray());
            foreach (var t in _tensors.Values) stream.Write(t.Bytes);
        });
    }
}
