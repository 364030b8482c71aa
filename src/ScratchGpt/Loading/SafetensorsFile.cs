using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;

namespace ScratchGpt.Loading;

/// <summary>
/// A memory-mapped .safetensors file.
///
/// Layout: 8-byte little-endian header length N, N bytes of UTF-8 JSON, then the raw tensor bytes.
/// The JSON maps each tensor name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
/// to the data section) and may hold "__metadata__" (string → string).
///
/// The whole header is validated before any tensor byte is touched, with the same rules as the
/// reference parser: N ≤ 100 MB and inside the file, JSON object, known dtypes, sizes computed with
/// overflow checks, byte length = product(shape) × dtype size, and the tensors, sorted by offset,
/// tile the data section exactly (no gap, no overlap, nothing past the end).
/// </summary>
public sealed unsafe class SafetensorsFile : ITensorFile
{
    public const long MaxHeaderBytes = 100_000_000;

    private readonly MemoryMappedFile? _map;
    private readonly MemoryMappedViewAccessor? _view;
    private readonly byte* _base;          // start of the mapped file
    private readonly long _dataStart;      // 8 + N
    private bool _disposed;

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public long DataLength { get; }

    private SafetensorsFile(string path, MemoryMappedFile? map, MemoryMappedViewAccessor? view, byte* basePtr,
        long dataStart, long dataLength, Dictionary<string, TensorInfo> tensors, Dictionary<string, string> metadata)
    {
        Path = path; _map = map; _view = view; _base = basePtr;
        _dataStart = dataStart; DataLength = dataLength; Tensors = tensors; Metadata = metadata;
    }

    public static SafetensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found");
        // The length comes from the opened handle, so a symlink (as in the Hub cache) gives its target's size.
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new ModelLoadException($"{path}: cannot open: {e.Message}", e); }
        long fileLength = stream.Length;
        if (fileLength < 8)
        {
            stream.Dispose();
            throw new ModelLoadException($"{path}: truncated safetensors file ({fileLength} bytes; the 8-byte header " +
                "length is missing)");
        }

        MemoryMappedFile map;
        try
        {
            map = MemoryMappedFile.CreateFromFile(stream, null, 0, MemoryMappedFileAccess.Read,
                HandleInheritability.None, leaveOpen: false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stream.Dispose();
            throw new ModelLoadException($"{path}: cannot open: {e.Message}", e);
        }

        MemoryMappedViewAccessor view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* ptr = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref ptr);
        ptr += view.PointerOffset;
        try
        {
            var bytes = new ReadOnlySpan<byte>(ptr, checked((int)Math.Min(fileLength, int.MaxValue)));
            ulong n = BitConverter.ToUInt64(bytes[..8]);
            if (n > MaxHeaderBytes)
                throw new ModelLoadException($"{path}: header length {n} is larger than the {MaxHeaderBytes}-byte " +
                    "limit (not a safetensors file, or corrupt)");
            if ((long)n > fileLength - 8)
                throw new ModelLoadException($"{path}: header length {n} runs past the end of the file ({fileLength} " +
                    "bytes): truncated or corrupt");
            var header = new ReadOnlySpan<byte>(ptr + 8, (int)n);
            long dataStart = 8 + (long)n;
            long dataLength = fileLength - dataStart;
            var (tensors, metadata) = ParseHeader(path, header, dataLength);
            return new SafetensorsFile(path, map, view, ptr, dataStart, dataLength, tensors, metadata);
        }
        catch
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
            view.Dispose(); map.Dispose();
            throw;
        }
    }

    /// <summary>Parses and validates a header against a data section of <paramref name="dataLength"/> bytes.</summary>
    internal static (Dictionary<string, TensorInfo>, Dictionary<string, string>) ParseHeader(string path,
        ReadOnlySpan<byte> header, long dataLength)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new ModelLoadException($"{path}: header does not start with '{{' (not a safetensors file)");
        JsonDocument doc;
        try
        {
            string text = new UTF8Encoding(false, true).GetString(header);
            doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (Exception e) when (e is JsonException or DecoderFallbackException or ArgumentException)
        { throw new ModelLoadException($"{path}: header is not valid UTF-8 JSON: {OneLine(e.Message)}", e); }

        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new ModelLoadException($"{path}: header is not a JSON object");
            var tensors = new Dictionary<string, TensorInfo>(StringComparer.Ordinal);
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    if (sawMetadata)
                        throw new ModelLoadException($"{path}: duplicate \"__metadata__\" entry in header");
                    sawMetadata = true;
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new ModelLoadException($"{path}: \"__metadata__\" must be an object of strings");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new ModelLoadException($"{path}: metadata value of '{m.Name}' is not a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                if (tensors.ContainsKey(prop.Name))
                    throw new ModelLoadException($"{path}: tensor '{prop.Name}' appears twice in the header");
                tensors[prop.Name] = ParseTensor(path, prop.Name, prop.Value);
            }
            ValidateLayout(path, tensors.Values, dataLength);
            return (tensors, metadata);
        }
    }

    private static TensorInfo ParseTensor(string path, string name, JsonElement e)
    {
        string where = $"{path}: tensor '{name}'";
        if (e.ValueKind != JsonValueKind.Object) throw new ModelLoadException($"{where}: entry is not an object");
        if (!e.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new ModelLoadException($"{where}: missing \"dtype\"");
        if (!SafetensorsDTypes.TryParse(dt.GetString()!, out var dtype))
            throw new ModelLoadException($"{where}: unknown dtype '{dt.GetString()}'");
        if (!e.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new ModelLoadException($"{where}: missing \"shape\"");
        var shape = new List<long>();
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out long v) || v < 0)
                throw new ModelLoadException($"{where}: shape entry {d} is not a non-negative integer");
            shape.Add(v);
        }
        if (!e.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array
            || off.GetArrayLength() != 2)
            throw new ModelLoadException($"{where}: \"data_offsets\" must be [begin, end]");
        if (!off[0].TryGetInt64(out long begin) || !off[1].TryGetInt64(out long end) || begin < 0 || end < begin)
            throw new ModelLoadException($"{where}: invalid data_offsets {off}");

        long count = 1;
        try
        {
            foreach (long d in shape) count = checked(count * d);
            long bytes = checked(count * dtype.Size());
            if (bytes != end - begin)
                throw new ModelLoadException($"{where}: shape [{string.Join(", ", shape)}] of {dtype.Name()} needs " +
                    $"{bytes} bytes but data_offsets span {end - begin}");
        }
        catch (OverflowException)
        { throw new ModelLoadException($"{where}: shape [{string.Join(", ", shape)}] overflows a 64-bit size"); }
        return new TensorInfo(name, dtype, shape.ToArray(), begin, end);
    }

    private static void ValidateLayout(string path, IEnumerable<TensorInfo> tensors, long dataLength)
    {
        long expected = 0;
        foreach (var t in tensors.OrderBy(t => t.Begin).ThenBy(t => t.End))
        {
            if (t.Begin != expected)
                throw new ModelLoadException(t.Begin < expected
                    ? $"{path}: tensor '{t.Name}' at bytes [{t.Begin}, {t.End}) overlaps the previous tensor (which " +
                    $"ends at {expected})"
                    : $"{path}: gap in the data section before tensor '{t.Name}' (starts at {t.Begin}, expected " +
                    $"{expected})");
            expected = t.End;
        }
        if (expected > dataLength)
            throw new ModelLoadException($"{path}: tensors need {expected} data bytes but the file has {dataLength}: " +
                "truncated or offsets out of range");
        if (expected < dataLength)
            throw new ModelLoadException($"{path}: {dataLength - expected} bytes after the last tensor are not " +
                "described by the header");
    }

    public TensorInfo Get(string name) =>
        Tensors.TryGetValue(name, out var t) ? t : throw new ModelLoadException($"{Path}: tensor '{name}' not found");

    /// <summary>The raw little-endian bytes of a tensor, straight from the mapping (no copy).</summary>
    public ReadOnlySpan<byte> RawBytes(TensorInfo t)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return new ReadOnlySpan<byte>(_base + _dataStart + t.Begin, checked((int)t.ByteLength));
    }

    /// <summary>A floating-point tensor as float32 (F16 and BF16 are widened exactly; F64 is rounded).</summary>
    public float[] ReadFloat32(string name)
    {
        var t = Get(name);
        var result = new float[t.ElementCount];
        ReadFloat32(t, result);
        return result;
    }

    public void ReadFloat32(TensorInfo t, Span<float> dst)
    {
        if (!DTypeConversion.TryToFloat32(RawBytes(t), t.DType, dst))
            throw new ModelLoadException($"{Path}: tensor '{t.Name}' has dtype {t.DType.Name()}, expected a float " +
                "type (F32, F16, BF16)");
    }

    public long[] ReadInt64(string name)
    {
        var t = Get(name);
        if (t.DType != SafetensorsDType.I64)
            throw new ModelLoadException($"{Path}: tensor '{name}' is {t.DType.Name()}, expected I64");
        return MemoryMarshal.Cast<byte, long>(RawBytes(t)).ToArray();
    }

    private static string OneLine(string s) => s.Replace('\n', ' ').Replace('\r', ' ');

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _view?.SafeMemoryMappedViewHandle.ReleasePointer();
        _view?.Dispose();
        _map?.Dispose();
    }
}
