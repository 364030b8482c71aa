using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ScratchGpt.Loading;

namespace ScratchGpt.Backends.Cpu;

/// <summary>
/// Runs the kernels of <see cref="CpuKernels"/> on all cores (<see cref="ForkJoin"/>): matmuls are split by output
/// columns, attention by heads. Buffers are plain managed arrays.
/// </summary>
public sealed class CpuBackend : IBackend
{
    public string Kind => "cpu";
    public string DeviceName { get; } = $"{Environment.ProcessorCount} cores, " +
        $"{System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture}, {VectorInstructions}";

    /// <summary>The instructions the kernels take their paths by, as the runtime reports them (a
    /// DOTNET_EnableAVX512=0, DOTNET_EnableAVXVNNI=0, DOTNET_EnableAVX2=0 or DOTNET_EnableHWIntrinsic=0 in the
    /// environment turns them off, to run what an older CPU runs): "AVX-512 + FMA + AVX-VNNI" on a Zen 5 or a
    /// Sapphire Rapids, "AVX2 + FMA" on a Zen 3 or a Skylake, "128-bit SIMD" below that, "no SIMD" without
    /// any.</summary>
    public static string VectorInstructions
    {
        get
        {
            var parts = new List<string>
            {
                Avx512BW.IsSupported ? "AVX-512" : Avx2.IsSupported ? "AVX2"
                    : Vector128.IsHardwareAccelerated ? "128-bit SIMD" : "no SIMD",
            };
            if (Fma.IsSupported) parts.Add("FMA");
            if (AvxVnni.IsSupported) parts.Add("AVX-VNNI");
            return string.Join(" + ", parts);
        }
    }

    private static float[] F(IDeviceBuffer b) => ((CpuBuffer)b).Data;

    public IDeviceBuffer Upload(ReadOnlySpan<float> data) => new CpuBuffer(data.ToArray());

    /// <summary>Every format as stored, but the scales of Q4_0, held widened to float32 (<see cref="Q4Weights"/>:
    /// 16 bytes of codes and 4 of scale per block of 32), and those of Q8_0 where the CPU has no AVX-512
    /// (<see cref="Q8Weights"/>: 32 bytes and 4 of scale; 32 and 2, the format's own, with AVX-512).</summary>
    public double BytesPerWeight(WeightPrecision precision) => precision switch
    {
        WeightPrecision.Q8_0 => (Loading.Q8_0.BlockSize + (Q8Weights.DecodeReadsWideScales ? sizeof(float) : 2))
            / (double)Loading.Q8_0.BlockSize,
        WeightPrecision.Q4_0 => (Loading.Q4_0.BlockSize / 2 + sizeof(float)) / (double)Loading.Q4_0.BlockSize,
        _ => precision.BytesPerWeight(),
    };

    /// <summary>A weight matrix in its format, in <see cref="HugePageMemory"/> (decode streams all of them).</summary>
    public IDeviceBuffer UploadWeight(ReadOnlySpan<float> data, WeightPrecision precision) => precision switch
    {
        WeightPrecision.Float16 => CpuBuffer.Weights(Float16Weights.From(data)),
        WeightPrecision.BFloat16 => CpuBuffer.BFloat16Weights(data),
        WeightPrecision.Q8_0 => CpuBuffer.Weights(Q8Weights.From(data)),
        WeightPrecision.Q4_0 => CpuBuffer.Weights(Q4Weights.From(data)),
        _ => CpuBuffer.Weights(data),
    };

    public IDeviceBuffer Allocate(long length) => new CpuBuffer(new float[length]);

    /// <summary>float32 or float16 (<see cref="Float16CacheValues"/>).</summary>
    public bool HoldsCache(KvCachePrecision precision) => true;

    /// <summary>A float16 cache holds halves.</summary>
    public int BytesPerCacheValue(KvCachePrecision precision) =>
        precision == KvCachePrecision.Float16 ? sizeof(ushort) : sizeof(float);

    public IDeviceBuffer AllocateCache(long length, KvCachePrecision precision) =>
        precision == KvCachePrecision.Float16 ? CpuBuffer.Float16Cache(length) : Allocate(length);

    public void Download(IDeviceBuffer src, long offset, Span<float> dst)
    {
        var b = (CpuBuffer)src;
        if (b.HalfCache is { } halves) CpuKernels.WidenHalf(halves.AsSpan((int)offset, dst.Length), dst);
        else b.Float32.Span.Slice((int)offset, dst.Length).CopyTo(dst);
    }

    /// <summary>float32 to float32, or float16 cache to float16 cache.</summary>
    public void Copy(IDeviceBuffer src, long srcOffset, IDeviceBuffer dst, long dstOffset, long count)
    {
        CpuBuffer s = (CpuBuffer)src, d = (CpuBuffer)dst;
        if (s.HalfCache is null != d.HalfCache is null)
            throw new ArgumentException("a copy between a float16 cache and a float32 buffer");
        if (s.HalfCache is { } from) from.AsSpan((int)srcOffset, (int)count).CopyTo(d.HalfCache.AsSpan((int)dstOffset));
        else s.Data.AsSpan((int)srcOffset, (int)count).CopyTo(d.Data.AsSpan((int)dstOffset));
    }

    public void Embedding(ReadOnlySpan<int> ids, int startPosition, IDeviceBuffer wte, IDeviceBuffer wpe,
        IDeviceBuffer x, int dim)
    {
        var table = (CpuBuffer)wte;
        if (table.Precision == WeightPrecision.Float32)
        {
            CpuKernels.Embedding(ids, startPosition, table.Float32.Span, F(wpe), F(x), dim);
            return;
        }
        // 16-bit, Q8_0 or Q4_0 embedding table: widen the looked-up rows, then add the positions.
        var xs = F(x);
        for (int t = 0; t < ids.Length; t++)
        {
            var row = xs.AsSpan(t * dim, dim);
            if (table.F16 is { } f16) f16.WidenRows(ids[t], 1, dim, row);
            else if (table.Q8 is { } q8) q8.Dequantize(ids[t], dim, row);
            else if (table.Q4 is { } q4) q4.Dequantize(ids[t], dim, row);
            else DTypeConversion.BFloat16ToFloat(table.BFloat16.Span.Slice(ids[t] * dim, dim), row);
            CpuKernels.Add(row, F(wpe).AsSpan((startPosition + t) * dim, dim));
        }
    }

    public void LayerNorm(IDeviceBuffer x, IDeviceBuffer gamma, IDeviceBuffer beta, IDeviceBuffer y, int rows, int dim,
        float eps)
    {
        float[] xs = F(x), g = F(gamma), b = F(beta), ys = F(y);
        if (rows < 8) { CpuKernels.LayerNorm(xs, g, b, ys, rows, dim, eps); return; }
        ForkJoin.For(rows,
            r => CpuKernels.LayerNorm(xs.AsSpan(r * dim, dim), g, b, ys.AsSpan(r * dim, dim), 1, dim, eps));
    }

    /// <summary>On the CPU an epilogue saves no launch, so it runs as the separate step it fuses on a GPU (same
    /// arithmetic, same bits): gelu over the result, or the result into pooled scratch and then added.</summary>
    public void MatMul(IDeviceBuffer x, IDeviceBuffer w, IDeviceBuffer? bias, IDeviceBuffer y, int rows, int inDim,
        int outDim, MatMulEpilogue epilogue = MatMulEpilogue.Store)
    {
        switch (epilogue)
        {
            case MatMulEpilogue.Gelu:
                MatMulInto(F(x), w, bias, F(y), rows, inDim, outDim);
                Gelu(y, (long)rows * outDim);
                return;
            case MatMulEpilogue.AddToOutput:
                var scratch = System.Buffers.ArrayPool<float>.Shared.Rent(rows * outDim);
                try
                {
                    MatMulInto(F(x), w, bias, scratch, rows, inDim, outDim);
                    CpuKernels.Add(F(y).AsSpan(0, rows * outDim), scratch.AsSpan(0, rows * outDim));
                }
                finally { System.Buffers.ArrayPool<float>.Shared.Return(scratch); }
                return;
            default:
                MatMulInto(F(x), w, bias, F(y), rows, inDim, outDim);
                return;
        }
    }

    private static void MatMulInto(float[] xs, IDeviceBuffer w, IDeviceBuffer? bias, float[] ys, int rows, int inDim,
        int outDim)
    {
        float[] bs = bias is null ? [] : F(bias);
        var wb = (CpuBuffer)w;
        // Prefill: the GEMM (Gemm.MatMulNT: outer products with AVX2 or AVX-512, dot-product tiles otherwise); float16
        // weights are widened a block of rows at a time; Q8_0 and Q4_0 weights are multiplied as bytes where the CPU
        // has AVX-VNNI, or AVX2 without AVX-512 (Q8Gemm.Pays), widened otherwise. Decode (below) reads every
        // format as stored: Q8_0 at ~1 byte a weight and Q4_0 at ~0.56, multiplied as integers with the input
        // quantized to Q8_0.
        if (rows >= 16 && wb.Precision != WeightPrecision.BFloat16)
        {
            if (wb.F16 is { } f16)
                Gemm.MatMulNT(xs.AsMemory(0, rows * inDim), f16, ys.AsMemory(0, rows * outDim), rows, outDim, inDim,
                    bs);
            else if ((wb.Q8 is not null || wb.Q4 is not null) && Q8Gemm.Pays)
            {
                // The input in Q8_0 blocks, as decode quantizes it, and the block sums in integers.
                const int B = Loading.Q8_0.BlockSize;
                sbyte[] quants = System.Buffers.ArrayPool<sbyte>.Shared.Rent(rows * inDim);
                float[] scales = System.Buffers.ArrayPool<float>.Shared.Rent(rows * inDim / B);
                ForRowChunks(rows, (r0, r1) => CpuKernels.QuantizeQ8(xs.AsSpan(r0 * inDim, (r1 - r0) * inDim),
                    quants.AsSpan(r0 * inDim), scales.AsSpan(r0 * inDim / B)));
                if (wb.Q8 is { } q8w) Q8Gemm.MatMulNT(quants, scales, q8w, bs, ys, rows, outDim, inDim);
                else Q8Gemm.MatMulNT(quants, scales, wb.Q4!, bs, ys, rows, outDim, inDim);
                System.Buffers.ArrayPool<sbyte>.Shared.Return(quants);
                System.Buffers.ArrayPool<float>.Shared.Return(scales);
            }
            else if (wb.Q8 is not null || wb.Q4 is not null)
            {
                // The input as decode's integer dot products see it (Q8_0 blocks), so prefill computes the same model.
                float[] xr = System.Buffers.ArrayPool<float>.Shared.Rent(rows * inDim);
                ForRowChunks(rows, (r0, r1) =>
                    CpuKernels.RoundTripQ8(xs.AsSpan(r0 * inDim, (r1 - r0) * inDim), xr.AsSpan(r0 * inDim)));
                var product = ys.AsMemory(0, rows * outDim);
                var input = xr.AsMemory(0, rows * inDim);
                if (wb.Q8 is { } q8f) Gemm.MatMulNT(input, q8f, product, rows, outDim, inDim, bs);
                else Gemm.MatMulNT(input, wb.Q4!, product, rows, outDim, inDim, bs);
                System.Buffers.ArrayPool<float>.Shared.Return(xr);
            }
            else Gemm.MatMulNT(xs.AsMemory(0, rows * inDim), wb.Float32, ys.AsMemory(0, rows * outDim), rows, outDim,
                inDim, bs);
            return;
        }
        // float16 decode: the input rows are put in the order the widening dot product reads them once, here.
        float[]? paired = wb.Precision == WeightPrecision.Float16 && rows <= CpuKernels.DecodeRows
            ? System.Buffers.ArrayPool<float>.Shared.Rent(rows * inDim) : null;
        // One input row (a decode step of one sequence) takes its columns in pairs half a matrix apart, two weight
        // streams per core (ColumnPairs), so a block is then a range of pairs j (columns j and j + outDim / 2).
        bool pairs = rows == 1 && outDim >= 2 && ColumnPairs.Pays(wb.Precision);
        int units = pairs ? outDim / 2 : outDim;
        // Enough column blocks to keep every core busy; each block's weight rows stay hot in cache
        // while all the input rows pass over them.
        int blocks = Math.Min(units, Math.Max(Environment.ProcessorCount * 8, units / 64));
        // A small product runs as one block on this thread: a hand-off to other cores costs microseconds, more than
        // it saves there (on one core ForkJoin runs every block on this thread anyway).
        if ((long)rows * inDim * outDim < 32_768) blocks = 1;
        if (paired is not null)
            for (int r = 0; r < rows; r++)
                CpuKernels.PairForHalfDot(xs.AsSpan(r * inDim, inDim), paired.AsSpan(r * inDim, inDim));
        // Q8_0 and Q4_0 weights: the input rows are quantized to Q8_0 once, here, for the integer dot products
        // (for Q4_0 with each block's 8 · dx · Σ qx, the offset of its codes).
        sbyte[]? xq = null;
        float[]? xd = null, xc = null;
        if (wb.Q8 is not null || wb.Q4 is not null)
        {
            xq = System.Buffers.ArrayPool<sbyte>.Shared.Rent(rows * inDim);
            xd = System.Buffers.ArrayPool<float>.Shared.Rent(rows * inDim / Loading.Q8_0.BlockSize);
            CpuKernels.QuantizeQ8(xs.AsSpan(0, rows * inDim), xq, xd);
        }
        if (wb.Q4 is not null)
        {
            xc = System.Buffers.ArrayPool<float>.Shared.Rent(rows * inDim / Loading.Q8_0.BlockSize);
            CpuKernels.Q4Offsets(xq!.AsSpan(0, rows * inDim), xd, xc);
        }
        void Columns(int blk)
        {
            int j0 = (int)((long)units * blk / blocks), j1 = (int)((long)units * (blk + 1) / blocks);
            if (pairs)
            {
                if (wb.F16 is { } f16Pairs) ColumnPairs.MatMul(paired, f16Pairs, bs, ys, inDim, outDim, j0, j1);
                else if (wb.Q8 is { } q8Pairs) ColumnPairs.MatMul(xq, xd, q8Pairs, bs, ys, inDim, outDim, j0, j1);
                else if (wb.Q4 is { } q4Pairs) ColumnPairs.MatMul(xq, xd, xc, q4Pairs, bs, ys, inDim, outDim, j0, j1);
                else ColumnPairs.MatMul(xs, wb.Float32.Span, bs, ys, inDim, outDim, j0, j1);
            }
            else if (wb.F16 is { } f16 && paired is not null)
                CpuKernels.MatMulColumnsHalfPaired(paired, f16.Halves.Span, f16.Scale, bs, ys, rows, inDim, outDim, j0,
                    j1);
            else if (wb.F16 is { } f16Rows)
                CpuKernels.MatMulColumns(xs, f16Rows.Halves.Span, f16Rows.Scale, bs, ys, rows, inDim, outDim, j0, j1);
            else if (wb.Precision == WeightPrecision.BFloat16)
                CpuKernels.MatMulColumns(xs, wb.BFloat16.Span, bs, ys, rows, inDim, outDim, j0, j1);
            else if (wb.Q8 is { } q8) CpuKernels.MatMulColumnsQ8(xq, xd, q8, bs, ys, rows, inDim, outDim, j0, j1);
            else if (wb.Q4 is { } q4)
                CpuKernels.MatMulColumnsQ4(xq, xd, xc, q4, bs, ys, rows, inDim, outDim, j0, j1);
            else CpuKernels.MatMulColumns(xs, wb.Float32.Span, bs, ys, rows, inDim, outDim, j0, j1);
        }
        ForkJoin.For(blocks, Columns);
        if (paired is not null) System.Buffers.ArrayPool<float>.Shared.Return(paired);
        if (xq is not null) System.Buffers.ArrayPool<sbyte>.Shared.Return(xq);
        if (xd is not null) System.Buffers.ArrayPool<float>.Shared.Return(xd);
        if (xc is not null) System.Buffers.ArrayPool<float>.Shared.Return(xc);
    }

    /// <summary>Rows r0 .. r1 − 1 of <paramref name="rows"/>, one chunk per core.</summary>
    private static void ForRowChunks(int rows, Action<int, int> body)
    {
        int chunks = Environment.ProcessorCount;
        ForkJoin.For(chunks, c => body(rows * c / chunks, rows * (c + 1) / chunks));
    }

    public void Gelu(IDeviceBuffer x, long count)
    {
        float[] xs = F(x);
        if (count < 65_536) { CpuKernels.Gelu(xs.AsSpan(0, (int)count)); return; }
        int chunks = Environment.ProcessorCount * 4;
        ForkJoin.For(chunks, c =>
        {
            int a = (int)(count * c / chunks), b = (int)(count * (c + 1) / chunks);
            CpuKernels.Gelu(xs.AsSpan(a, b - a));
        });
    }

    public void Add(IDeviceBuffer x, IDeviceBuffer y, long count) =>
        CpuKernels.Add(F(x).AsSpan(0, (int)count), F(y).AsSpan(0, (int)count));

    public void Attention(IDeviceBuffer qkv, IDeviceBuffer kCache, IDeviceBuffer vCache, IDeviceBuffer y,
        IDeviceBuffer? probs, int rows, int past, int nHead, int headDim)
    {
        float[] q = F(qkv), ys = F(y), ps = probs is null ? [] : F(probs);
        int E = nHead * headDim, capacity = IBackend.CacheCapacity(kCache, nHead, headDim);
        Half[]? kHalf = ((CpuBuffer)kCache).HalfCache, vHalf = ((CpuBuffer)vCache).HalfCache;
        void Head(int h)
        {
            // the new rows' k and v of head h into the cache (each head its own block, so heads run in parallel)
            for (int r = 0; r < rows; r++)
            {
                int to = (h * capacity + past + r) * headDim;   // k_cache[h, past + r, :]
                var k = q.AsSpan(r * 3 * E + E + h * headDim, headDim);
                var v = q.AsSpan(r * 3 * E + 2 * E + h * headDim, headDim);
                if (kHalf is null) { k.CopyTo(F(kCache).AsSpan(to)); v.CopyTo(F(vCache).AsSpan(to)); }
                else { Float16CacheValues.Store(k, kHalf.AsSpan(to)); Float16CacheValues.Store(v, vHalf!.AsSpan(to)); }
            }
            // room for up to four rows' scores (a prompt takes four at a time)
            int n = Math.Min(rows, 4) * (past + rows);
            Span<float> scores = n <= 8192 ? stackalloc float[n] : new float[n];
            int at = h * capacity * headDim, length = (past + rows) * headDim;   // head h's positions 0 .. past + rows
            if (kHalf is null)
                CpuKernels.AttentionHead(q, F(kCache).AsSpan(at, length), F(vCache).AsSpan(at, length), ys, ps, rows,
                    past, nHead, headDim, h, scores);
            else if (rows < 4)   // a decode step: the halves widened in registers as they stream past
                CpuKernels.AttentionRows<Half, Float16CacheRows>(q, kHalf.AsSpan(at, length), vHalf!.AsSpan(at, length),
                    ys, ps, rows, past, nHead, headDim, h, scores);
            else
            {
                // A prompt reads each key and value once per row: widen the head's blocks once (exactly) and take the
                // float32 kernel, four rows at a time.
                var wide = System.Buffers.ArrayPool<float>.Shared.Rent(2 * length);
                try
                {
                    Span<float> k = wide.AsSpan(0, length), v = wide.AsSpan(length, length);
                    CpuKernels.WidenHalf(kHalf.AsSpan(at, length), k);
                    CpuKernels.WidenHalf(vHalf!.AsSpan(at, length), v);
                    CpuKernels.AttentionHead(q, k, v, ys, ps, rows, past, nHead, headDim, h, scores);
                }
                finally { System.Buffers.ArrayPool<float>.Shared.Return(wide); }
            }
        }
        // Heads in parallel once there is enough work to pay for it (a decode step over a 128-token cache already
        // is: the KV cache read is ~1 MB a layer for gpt2); on one core ForkJoin runs them on this thread.
        if ((long)rows * (past + rows) * nHead * headDim < 65_536)
            for (int h = 0; h < nHead; h++) Head(h);
        else ForkJoin.For(nHead, Head);
    }

    /// <summary>The first index of the largest value (torch.argmax's tie rule), one pass over the row.</summary>
    public int Argmax(IDeviceBuffer x, int n)
    {
        var v = F(x).AsSpan(0, n);
        int best = 0;
        for (int i = 1; i < v.Length; i++) if (v[i] > v[best]) best = i;
        return best;
    }

    public void Dispose() { }
}
