using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ScratchGpt.Backends;

/// <summary>
/// Wraps a backend and times each of its calls, grouped by operation and shape (each matmul by its
/// in → out size, so its achieved bandwidth can be read off, as can attention's over the KV cache it reads).
/// `scratchgpt bench --profile` uses it to show
/// where a decoded token's time goes. On the CPU every call is synchronous, so the times are exact; on
/// an ILGPU device a launch returns before the kernel finishes, so the time lands on the next call that waits,
/// unless <paramref name="waitForDevice"/> is given: it is called at the end of every timed call.
/// </summary>
public sealed class ProfilingBackend(IBackend inner, Action? waitForDevice = null) : IBackend
{
    /// <summary>Time and number of calls of one group of operations, and the weight bytes (matmuls) and KV-cache bytes
    /// (attention) its calls read in all.</summary>
    public sealed record Entry(string Operation, TimeSpan Time, long Calls, long WeightBytes, long CacheBytes);

    private readonly Dictionary<string, (long Ticks, long Calls, long WeightBytes, long CacheBytes)> _entries = new();
    // Bytes per element of each weight matrix and KV cache, as the inner backend holds it (float32 for any other
    // buffer). Held weakly: caches come and go with sessions, and a disposed session's cache is not kept alive here.
    private readonly ConditionalWeakTable<IDeviceBuffer, StrongBox<double>> _bytesPerElement = new();

    public IBackend Inner => inner;
    public string Kind => inner.Kind;
    public string DeviceName => inner.DeviceName;

    /// <summary>Forgets the times so far (e.g. after the warm-up or the prefill).</summary>
    public void Reset() { lock (_entries) _entries.Clear(); }

    /// <summary>The groups, the most time first.</summary>
    public IReadOnlyList<Entry> Entries()
    {
        lock (_entries)
            return _entries.Select(e =>
                new Entry(e.Key, TimeSpan.FromTicks(e.Value.Ticks * TimeSpan.TicksPerSecond / Stopwatch.Frequency),
                e.Value.Calls, e.Value.WeightBytes, e.Value.CacheBytes))
                .OrderByDescending(e => e.Time).ToList();
    }

    /// <summary>Adds the time since <paramref name="start"/> (a Stopwatch timestamp) to
    /// <paramref name="operation"/>, with the bytes the call read.</summary>
    private void Record(string operation, long start, long weightBytes = 0, long cacheBytes = 0)
    {
        waitForDevice?.Invoke();
        long ticks = Stopwatch.GetTimestamp() - start;
        lock (_entries)
        {
            var (t, c, w, k) = _entries.GetValueOrDefault(operation);
            _entries[operation] = (t + ticks, c + 1, w + weightBytes, k + cacheBytes);
        }
    }

    private long _bytesMoved;

    /// <summary>Bytes uploaded and downloaded through this wrapper: the inputs and outputs of what it ran.</summary>
    public long BytesMoved => Interlocked.Read(ref _bytesMoved);

    public IDeviceBuffer Upload(ReadOnlySpan<float> data)
    {
        Interlocked.Add(ref _bytesMoved, data.Length * 4L);
        return inner.Upload(data);
    }

    public double BytesPerWeight(WeightPrecision precision) => inner.BytesPerWeight(precision);

    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision)
    {
        double bytesPer = inner.BytesPerWeight(precision);
        Interlocked.Add(ref _bytesMoved, (long)(data.Length * bytesPer));
        var b = inner.UploadWeight(data, precision);
        _bytesPerElement.AddOrUpdate(b, new(bytesPer));
        return b;
    }

    public IDeviceBuffer Allocate(long length) => inner.Allocate(length);
    public int BytesPerCacheValue(KvCachePrecision precision) => inner.BytesPerCacheValue(precision);

    public IDeviceBuffer AllocateCache(long length, KvCachePrecision precision)
    {
        var b = inner.AllocateCache(length, precision);
        _bytesPerElement.AddOrUpdate(b, new(inner.BytesPerCacheValue(precision)));
        return b;
    }

    public bool HoldsCache(KvCachePrecision precision) => inner.HoldsCache(precision);

    public void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        Interlocked.Add(ref _bytesMoved, dst.Length * 4L);
        long t = Stopwatch.GetTimestamp(); inner.Download(src, offset, dst); Record("download", t);
    }

    public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count)
    {
        long t = Stopwatch.GetTimestamp(); inner.Copy(src, srcOffset, dst, dstOffset, count); Record("copy", t);
    }

    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe,
        IDeviceBuffer x, int dim)
    {
        long t = Stopwatch.GetTimestamp();
        inner.Embedding(ids, startPosition, wte, wpe, x, dim);
        Record("embedding", t);
    }

    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim,
        float eps)
    {
        long t = Stopwatch.GetTimestamp(); inner.LayerNorm(x, gamma, beta, y, rows, dim, eps); Record("layernorm", t);
    }

    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim,
        int outDim, MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        double bytes = BytesPerElement(w);
        long t = Stopwatch.GetTimestamp(); inner.MatMul(x, w, bias, y, rows, inDim, outDim, epilogue);
        string then = epilogue switch { MatMulEpilogue.Gelu => " +gelu", MatMulEpilogue.AddToOutput => " +residual",
            _ => "" };
        Record($"matmul {inDim}→{outDim}{then}{(rows == 1 ? "" : $" ×{rows} rows")}", t,
            (long)(inDim * (long)outDim * bytes));
    }

    public void Gelu(IDeviceBuffer x, long count)
    {
        long t = Stopwatch.GetTimestamp(); inner.Gelu(x, count); Record("gelu", t);
    }

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count)
    {
        long t = Stopwatch.GetTimestamp(); inner.Add(x, y, count); Record("add", t);
    }

    public int Argmax(IDeviceBuffer x, int n)
    {
        long t = Stopwatch.GetTimestamp(); int i = inner.Argmax(x, n); Record("argmax", t); return i;
    }

    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y,
        IDeviceBuffer? probs, int rows, int past, int nHead, int headDim)
    {
        double bytes = BytesPerElement(kCache);
        long t = Stopwatch.GetTimestamp();
        inner.Attention(qkv, kCache, vCache, y, probs, rows, past, nHead, headDim);
        // k and v of positions 0 .. past + rows − 1, each read at least once
        Record("attention", t, cacheBytes: (long)(2L * (past + rows) * nHead * headDim * bytes));
    }

    private double BytesPerElement(IDeviceBuffer b) =>
        _bytesPerElement.TryGetValue(b, out var held) ? held.Value : sizeof(float);

    public void Dispose() => inner.Dispose();
}
