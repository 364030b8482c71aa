using System.Text;

namespace ScratchGpt.Loading;

/// <summary>
/// Writes a GGUF file (version 3, little-endian), the format llama.cpp reads:
///     "GGUF", version, tensor count, key-value count
///     key-values: key (u64 length + UTF-8), value type (u32), value (arrays: element type, u64 count, elements)
///     tensor infos: name, n_dims (u32), dims (u64 each, innermost first), ggml type (u32), offset into the data
///     padding to the alignment (32), then each tensor's bytes at its offset, every offset a multiple of 32.
/// </summary>
public sealed class GgufWriter
{
    public enum ValueType : uint { UInt32 = 4, Int32 = 5, Float32 = 6, String = 8, Array = 9 }

    /// <summary>The ggml element types written here.</summary>
    public enum TensorType : uint { F32 = 0, F16 = 1, Q4_0 = 2, Q8_0 = 8 }

    public const int Alignment = 32;

    private readonly List<(string Key, Action<BinaryWriter> Value)> _values = [];
    private readonly List<(string Name, long[] Dims, TensorType Type, byte[] Data)> _tensors = [];

    public GgufWriter Add(string key, string value) =>
        Value(key, w => { w.Write((uint)ValueType.String); Str(w, value); });
    public GgufWriter Add(string key, uint value) =>
        Value(key, w => { w.Write((uint)ValueType.UInt32); w.Write(value); });
    public GgufWriter Add(string key, float value) =>
        Value(key, w => { w.Write((uint)ValueType.Float32); w.Write(value); });

    public GgufWriter Add(string key, IReadOnlyList<string> values) => Value(key, w =>
    {
        w.Write((uint)ValueType.Array); w.Write((uint)ValueType.String); w.Write((ulong)values.Count);
        foreach (string v in values) Str(w, v);
    });

    public GgufWriter Add(string key, IReadOnlyList<int> values) => Value(key, w =>
    {
        w.Write((uint)ValueType.Array); w.Write((uint)ValueType.Int32); w.Write((ulong)values.Count);
        foreach (int v in values) w.Write(v);
    });

    /// <param name="dims">ggml order: the innermost (contiguous) dimension first, so a row-major [rows, cols] matrix
    /// is [cols, rows].</param>
    public GgufWriter AddTensor(string name, long[] dims, TensorType type, byte[] data)
    {
        long count = dims.Aggregate(1L, (a, b) => a * b);
        long want = type switch { TensorType.F32 => 4 * count, TensorType.F16 => 2 * count,
            TensorType.Q4_0 => count / Q4_0.BlockSize * Q4_0.BlockBytes,
            _ => count / Q8_0.BlockSize * Q8_0.BlockBytes };
        if (data.Length != want)
            throw new ArgumentException($"tensor '{name}': {data.Length} bytes, its shape and type need {want}");
        _tensors.Add((name, dims, type, data));
        return this;
    }

    public void Save(string path) => AtomicFile.Write(path, stream =>
    {
        using var w = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
        w.Write("GGUF"u8);
        w.Write(3u);
        w.Write((ulong)_tensors.Count);
        w.Write((ulong)_values.Count);
        foreach (var (key, value) in _values) { Str(w, key); value(w); }
        long offset = 0;
        foreach (var (name, dims, type, data) in _tensors)
        {
            Str(w, name);
            w.Write((uint)dims.Length);
            foreach (long d in dims) w.Write((ulong)d);
            w.Write((uint)type);
            w.Write((ulong)offset);
            offset = Align(offset + data.Length);
        }
        Pad(w);
        long start = stream.Position;
        foreach (var (_, _, _, data) in _tensors)
        {
            w.Write(data);
            Pad(w, start);
        }
    });

    private GgufWriter Value(string key, Action<BinaryWriter> write)
    {
        if (_values.Any(v => v.Key == key)) throw new ArgumentException($"GGUF key '{key}' given twice");
        _values.Add((key, write));
        return this;
    }

    private static void Str(BinaryWriter w, string s)
    {
        byte[] b = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)b.Length);
        w.Write(b);
    }

    private static long Align(long n) => (n + Alignment - 1) / Alignment * Alignment;

    private static void Pad(BinaryWriter w, long origin = 0)
    {
        long pos = w.BaseStream.Position - origin;
        for (long i = pos; i < Align(pos); i++) w.Write((byte)0);
    }
}
