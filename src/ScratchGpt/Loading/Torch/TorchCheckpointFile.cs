using System.Buffers.Binary;
using System.IO.Compression;
using System.Runtime.InteropServices;

namespace ScratchGpt.Loading.Torch;

/// <summary>
/// A PyTorch checkpoint (pytorch_model.bin) read without executing it. Two containers exist:
///
/// - zip (torch ≥ 1.6): ARCHIVE/data.pkl is the pickled state dict; each storage is the file
///   ARCHIVE/data/KEY, raw little-endian elements; the pickle refers to it by a persistent id
///   ('storage', torch.FloatStorage, KEY, location, numel).
/// - legacy (older files, e.g. the original gpt2 upload): five pickles back to back — magic number,
///   protocol version, system info, the state dict, the list of storage keys — then each storage as
///   an int64 element count followed by its bytes, in that key order.
///
/// The pickles go through <see cref="RestrictedUnpickler"/>, so a file that tries to call anything
/// but the tensor rebuild functions is refused with the global's name.
/// </summary>
public sealed class TorchCheckpointFile : ITensorFile
{
    private const long MaxPickleBytes = 256L << 20;
    private static readonly BigIntegerMagic Magic = new();

    public string Path { get; }
    public IReadOnlyDictionary<string, TensorInfo> Tensors { get; }
    private readonly Dictionary<string, TorchTensor> _views;
    private readonly Func<TorchStorage, byte[]> _readStorage;
    private readonly ZipArchive? _zip;
    private (string Key, byte[] Bytes)? _lastStorage;

    private TorchCheckpointFile(string path, Dictionary<string, TorchTensor> views, Func<TorchStorage,
        byte[]> readStorage, ZipArchive? zip)
    {
        Path = path;
        _views = views;
        _readStorage = readStorage;
        _zip = zip;
        Tensors = views.ToDictionary(kv => kv.Key,
            kv => new TensorInfo(kv.Key, kv.Value.Storage.DType, kv.Value.Shape, 0,
            kv.Value.Shape.Aggregate(1L, (a, b) => a * b) * kv.Value.Storage.DType.Size()));
    }

    public static TorchCheckpointFile Open(string path)
    {
        if (!File.Exists(path)) throw new ModelLoadException($"{path}: file not found");
        try
        {
            using (var probe = File.OpenRead(path))
            {
                Span<byte> head = stackalloc byte[4];
                if (probe.ReadAtLeast(head, 4, throwOnEndOfStream: false) < 4)
                    throw new ModelLoadException($"{path}: file is too short to be a PyTorch checkpoint");
                if (head.SequenceEqual("PK\x03\x04"u8)) return OpenZip(path);
                if (head[0] != 0x80)
                    throw new ModelLoadException($"{path}: neither a zip nor a pickle: not a PyTorch checkpoint");
            }
            return OpenLegacy(path);
        }
        catch (InvalidDataException e) { throw new ModelLoadException($"{path}: broken zip container: {e.Message}"); }
    }

    private static TorchCheckpointFile OpenZip(string path)
    {
        var zip = ZipFile.OpenRead(path);
        try
        {
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl")
                && e.FullName.Count(c => c == '/') == 1)
                ?? throw new ModelLoadException($"{path}: zip has no ARCHIVE/data.pkl: not a torch.save file");
            string prefix = pkl.FullName[..^"data.pkl".Length];
            byte[] pickle = ReadEntry(path, pkl, MaxPickleBytes);
            var root = new RestrictedUnpickler(pickle,
                path) { PersistentLoad = pid => StorageFromPid(path, pid) }.Load();
            var views = StateDict(path, root);
            byte[] Read(TorchStorage s)
            {
                var entry = zip.GetEntry(prefix + "data/" + s.Key)
                    ?? throw new ModelLoadException($"{path}: storage '{s.Key}' is missing from the zip");
                long bytes = checked(s.ElementCount * s.DType.Size());
                if (entry.Length != bytes)
                    throw new ModelLoadException($"{path}: storage '{s.Key}' has {entry.Length} bytes, " +
                        $"expected {bytes}");
                return ReadEntry(path, entry, bytes);
            }
            return new TorchCheckpointFile(path, views, Read, zip);
        }
        catch { zip.Dispose(); throw; }
    }

    private static byte[] ReadEntry(string path, ZipArchiveEntry entry, long maxBytes)
    {
        if (entry.Length > maxBytes || entry.Length > Array.MaxLength)
            throw new ModelLoadException($"{path}: zip entry '{entry.FullName}' is {entry.Length} bytes, more " +
                "than expected");
        var buffer = new byte[entry.Length];
        using var s = entry.Open();
        if (s.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false) != buffer.Length)
            throw new ModelLoadException($"{path}: zip entry '{entry.FullName}' is truncated");
        return buffer;
    }

    private static TorchCheckpointFile OpenLegacy(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        int pos = 0;
        object? Next()
        {
            var u = new RestrictedUnpickler(data, path, pos) { PersistentLoad = pid => StorageFromPid(path, pid) };
            var o = u.Load();
            pos = u.Position;
            return o;
        }
        if (!Magic.Matches(Next()))
            throw new ModelLoadException($"{path}: pickle does not start with torch's magic number: not a PyTorch " +
                "checkpoint");
        if (Next() is not 1001L)
            throw new ModelLoadException($"{path}: unsupported legacy torch.save protocol version");
        Next(); // system info: endianness and type sizes (little-endian assumed, checked by the storage sizes below)
        var views = StateDict(path, Next());
        if (Next() is not List<object?> keys || keys.Any(k => k is not string))
            throw new ModelLoadException($"{path}: storage key list is missing or malformed");
        var storages = new Dictionary<string, byte[]>();
        var declared = views.Values.Select(v => v.Storage).DistinctBy(s => s.Key).ToDictionary(s => s.Key);
        foreach (string key in keys.Cast<string>())
        {
            if (data.Length - pos < 8) throw new ModelLoadException($"{path}: truncated before storage '{key}'");
            long count = BinaryPrimitives.ReadInt64LittleEndian(data.AsSpan(pos, 8));
            pos += 8;
            int size = declared.TryGetValue(key, out var s) ? s.DType.Size()
                : throw new ModelLoadException($"{path}: storage '{key}' is not used by any tensor");
            if (count < 0 || count > (data.Length - pos) / size)
                throw new ModelLoadException($"{path}: storage '{key}' declares {count} elements, past the end " +
                    "of the file");
            storages[key] = data.AsSpan(pos, (int)(count * size)).ToArray();
            pos += (int)(count * size);
        }
        byte[] Read(TorchStorage st) =>
            storages.TryGetValue(st.Key, out var b) ? b
            : throw new ModelLoadException($"{path}: storage '{st.Key}' has no data");
        return new TorchCheckpointFile(path, views, Read, null);
    }

    /// <summary>('storage', torch.XStorage, key, location, numel[, view metadata]) → a storage record.</summary>
    private static TorchStorage StorageFromPid(string path, object?[] pid)
    {
        if (pid.Length < 5 || pid[0] is not "storage" || pid[2] is not string key || pid[4] is not long numel
            || numel < 0)
            throw new ModelLoadException($"{path}: persistent id is not a torch storage reference");
        if (!RestrictedUnpickler.TryStorageType(pid[1], out var dtype))
            throw new ModelLoadException($"{path}: storage type '{pid[1]}' is not supported");
        return new TorchStorage(dtype, key, numel);
    }

    private static Dictionary<string, TorchTensor> StateDict(string path, object? root)
    {
        if (root is not PickleDict dict)
            throw new ModelLoadException($"{path}: the pickle is not a state dict (an OrderedDict of tensors)");
        var views = new Dictionary<string, TorchTensor>(StringComparer.Ordinal);
        foreach (var (k, v) in dict)
        {
            if (k is not string name) throw new ModelLoadException($"{path}: state dict key '{k}' is not a string");
            if (v is not TorchTensor t) continue;   // non-tensor entries (e.g. an int step counter) are not weights
            if (t.Shape.Any(d => d < 0) || t.Stride.Any(d => d < 0) || t.StorageOffset < 0)
                throw new ModelLoadException($"{path}: tensor '{name}' has a negative size, stride or offset");
            long count = t.Shape.Aggregate(1L, (a, b) => checked(a * b));
            long last = count == 0 ? 0 : t.StorageOffset + t.Shape.Zip(t.Stride, (d, s) => (d - 1) * s).Sum() + 1;
            if (last > t.Storage.ElementCount)
                throw new ModelLoadException($"{path}: tensor '{name}' reaches element {last} of a storage of " +
                    $"{t.Storage.ElementCount}");
            if (!views.TryAdd(name, t)) throw new ModelLoadException($"{path}: tensor '{name}' appears twice");
        }
        return views;
    }

    public void ReadFloat32(TensorInfo info, Span<float> dst)
    {
        var t = _views[info.Name];
        if (_lastStorage?.Key != t.Storage.Key) _lastStorage = (t.Storage.Key, _readStorage(t.Storage));
        byte[] raw = _lastStorage.Value.Bytes;
        int size = t.Storage.DType.Size();
        long count = info.ElementCount;
        // The storage as float32 from the tensor's first element on; then the view is gathered by strides.
        ReadOnlySpan<byte> bytes = raw.AsSpan(checked((int)(t.StorageOffset * size)));
        long span = count == 0 ? 0 : t.Shape.Zip(t.Stride, (d, s) => (d - 1) * s).Sum() + 1;
        var flat = new float[span];
        var slice = bytes[..checked((int)(span * size))];
        if (!DTypeConversion.TryToFloat32(slice, t.Storage.DType, flat))
            throw new ModelLoadException($"{Path}: tensor '{info.Name}' has dtype {t.Storage.DType.Name()}, expected " +
                "a float type");
        bool contiguous = true;
        for (int i = t.Shape.Length - 1, expect = 1; i >= 0; expect *= (int)t.Shape[i], i--)
            if (t.Shape[i] != 1 && t.Stride[i] != expect) contiguous = false;
        if (contiguous) { flat.AsSpan(0, (int)count).CopyTo(dst); return; }
        var index = new long[t.Shape.Length];
        for (long n = 0; n < count; n++)
        {
            long at = 0;
            for (int i = 0; i < index.Length; i++) at += index[i] * t.Stride[i];
            dst[(int)n] = flat[at];
            for (int i = index.Length - 1; i >= 0 && ++index[i] == t.Shape[i]; i--) index[i] = 0;
        }
    }

    public void Dispose() => _zip?.Dispose();

    /// <summary>torch's legacy magic number, 0x1950a86a20f9469cfc6c.</summary>
    private sealed class BigIntegerMagic
    {
        private static readonly System.Numerics.BigInteger Value = System.Numerics.BigInteger.Parse(
            "1950a86a20f9469cfc6c", System.Globalization.NumberStyles.HexNumber);
        public bool Matches(object? o) => o is System.Numerics.BigInteger b && b == Value;
    }
}
