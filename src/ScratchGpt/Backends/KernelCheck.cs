using ScratchGpt.Backends.Reference;

namespace ScratchGpt.Backends;

/// <summary>
/// One table of op cases, run on any backend against the plain <see cref="ReferenceBackend"/> (ggml's
/// test-backend-ops, llm.c's kernel checks): random inputs whose sizes are no multiple of any tile (1, 7, 33, 769,
/// 50257). The SIMD CPU backend and every ILGPU device run the same cases. Used by the tests and by
/// `scratchgpt kernels test`.
/// </summary>
public static class KernelCheck
{
    /// <summary>Relative error allowed against the reference (GPU tanh and exp are approximations at ~1e-6).</summary>
    public const double Tolerance = 1e-4;

    /// <summary>Values written past the end of every output buffer, and how many: overwriting one fails the
    /// case.</summary>
    private const float Sentinel = -7.77e33f;
    private const int Guard = 32;

    public static IEnumerable<KernelCheckResult> Run(IBackend device, int seed = 0, bool large = true,
        bool perf = false)
    {
        var cpu = new ReferenceBackend();
        var rng = new Random(seed);
        float[] Rand(long n, float scale = 1f)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
            return a;
        }
        // Outputs carry Guard sentinel values past their end; a kernel that writes there fails its case (all NaN).
        var logical = new Dictionary<IDeviceBuffer, int>(ReferenceEqualityComparer.Instance);   // output → its length
        IDeviceBuffer Output(IBackend be, float[] initial)
        {
            var b = be.Upload([.. initial, .. Enumerable.Repeat(Sentinel, Guard)]);
            logical.Add(b, initial.Length);
            return b;
        }
        IDeviceBuffer Zeros(IBackend be, long n) => Output(be, new float[n]);
        float[] Read(IBackend be, IDeviceBuffer b)
        {
            var a = new float[b.Length];
            be.Download(b, 0, a);
            if (!logical.TryGetValue(b, out int n)) return a;
            bool intact = a.AsSpan(n).IndexOfAnyExcept(Sentinel) < 0;
            return intact ? a[..n] : Enumerable.Repeat(float.NaN, n).ToArray();
        }

        KernelCheckResult Compare(string kernel, string shape, Func<IBackend, float[]> run)
        {
            var result = Measure(kernel, shape, run(cpu), run(device));
            return perf ? Time(result, run) : result;
        }

        // The device's op calls timed through a ProfilingBackend (waiting for each launch), best of three runs.
        KernelCheckResult Time(KernelCheckResult result, Func<IBackend, float[]> run)
        {
            Action? wait = device is Ilgpu.IlgpuBackend g ? g.Synchronize : null;
            double best = double.PositiveInfinity;
            long bytes = 0;
            for (int i = 0; i < 3; i++)
            {
                var timed = new ProfilingBackend(device, wait);
                run(timed);
                // 0.1 µs is the profile's resolution: a faster op shows as that.
                best = Math.Min(best,
                    Math.Max(1e-7,
                    timed.Entries().Where(e => e.Operation != "download").Sum(e => e.Time.TotalSeconds)));
                bytes = timed.BytesMoved;
            }
            return result with { Microseconds = best * 1e6, GigabytesPerSecond = bytes / best / 1e9 };
        }

        // y = x · wᵀ + b with w held in a weight format, and rows of an embedding table held in one (+ positions).
        KernelCheckResult WeightMatMul(string kernel, WeightPrecision precision, int R, int I, int O, float[] x,
            float[] w, float[] b) => Compare(kernel, $"[{R}×{I}]·[{O}×{I}]ᵀ", be =>
        {
            using var xb = be.Upload(x);
            using var wb = be.UploadWeight(w, precision);
            using var bb = be.Upload(b);
            using var y = Zeros(be, (long)R * O);
            be.MatMul(xb, wb, bb, y, R, I, O);
            return Read(be, y);
        });
        KernelCheckResult WeightEmbedding(string kernel, WeightPrecision precision, int[] ids, int start, float[] wte,
            float[] wpe, int dim) => Compare(kernel, $"{ids.Length} ids, dim {dim}", be =>
        {
            using var a = be.UploadWeight(wte, precision);
            using var p = be.Upload(wpe);
            using var x = Zeros(be, (long)ids.Length * dim);
            be.Embedding(ids, start, a, p, x, dim);
            return Read(be, x);
        });

        var matmulShapes = new List<(int R, int I, int O)>
        {
            (1, 7, 1),
            (1, 769, 33),
            (7, 33, 769),
            (33, 769, 7),
            (130, 100, 129),
            (1, 64, 2053),
        };
        if (large) { matmulShapes.Add((1, 64, 50257)); matmulShapes.Add((7, 769, 50257)); }
        foreach (var (R, I, O) in matmulShapes)
        {
            float[] x = Rand((long)R * I), w = Rand((long)O * I), b = Rand(O);
            foreach (bool withBias in new[] { true, false })
                yield return Compare(withBias ? "matmul+bias" : "matmul", $"[{R}×{I}]·[{O}×{I}]ᵀ", be =>
                {
                    using var xb = be.Upload(x);
                    using var wb = be.Upload(w);
                    using var bb = be.Upload(b);
                    using var y = Zeros(be, (long)R * O);
                    be.MatMul(xb, wb, withBias ? bb : null, y, R, I, O);
                    return Read(be, y);
                });
        }
        // The fused epilogues: gelu_new of the result, and adding it to what y holds (a residual).
        foreach (var epilogue in new[] { MatMulEpilogue.Gelu, MatMulEpilogue.AddToOutput })
            foreach (var (R, I, O) in new[] { (1, 769, 33), (7, 33, 769), (70, 33, 65) })
            {
                float[] x = Rand((long)R * I), w = Rand((long)O * I), b = Rand(O), y0 = Rand((long)R * O);
                yield return Compare(epilogue == MatMulEpilogue.Gelu ? "matmul+bias → gelu" : "matmul+bias → += y",
                    $"[{R}×{I}]·[{O}×{I}]ᵀ", be =>
                {
                    using var xb = be.Upload(x);
                    using var wb = be.Upload(w);
                    using var bb = be.Upload(b);
                    using var y = Output(be, y0);
                    be.MatMul(xb, wb, bb, y, R, I, O, epilogue);
                    return Read(be, y);
                });
            }
        // Weights in the other formats. 16-bit ones stay 16-bit on the device and are widened in the kernel (the CPU
        // widens them its own way). Q8_0 and Q4_0 (rows in blocks of 32): the reference holds their values, d · q and
        // d · (q − 8), as float32; the CPU reads the bytes and quantizes the input to Q8_0 as well. Their input here
        // is already on Q8_0's grid (d · q per block), so that quantization is exact and every backend must give the
        // same sums.
        foreach (var precision in new[] { WeightPrecision.Float16, WeightPrecision.BFloat16, WeightPrecision.Q8_0,
            WeightPrecision.Q4_0 })
        {
            bool quantized = precision is WeightPrecision.Q8_0 or WeightPrecision.Q4_0;
            var shapes = quantized
                ? new[] { (1, 768, 33), (7, 64, 769), (70, 96, 65), (1, 64, large ? 50257 : 2053) }
                : new[] { (1, 769, 33), (7, 33, 769), (12, 40, 65), (70, 33, 65), (1, 64, large ? 50257 : 2053) };
            string format = precision switch
            {
                WeightPrecision.Float16 => "f16", WeightPrecision.BFloat16 => "bf16", WeightPrecision.Q8_0 => "q8_0",
                _ => "q4_0",
            };
            foreach (var (R, I, O) in shapes)
            {
                float[] x = Rand((long)R * I), w = Rand((long)O * I), b = Rand(O);
                if (quantized) x = Loading.Q8_0.RoundTrip(x);
                yield return WeightMatMul($"matmul+bias ({format} weights)", precision, R, I, O, x, w, b);
            }
        }
        // Float16 weights at the ends of their range: all below 2^-14 (subnormal halves, which the CPU stores times
        // 2^10, see Float16Weights) and up to 4096 (where a smaller power of two fits), through decode (1 row), a few
        // rows and the GEMM, and as an embedding table. Bias and positions scaled alike, so the weights count.
        foreach (float scale in new[] { MathF.ScaleB(1f, -16), 4096f })
        {
            string range = scale < 1 ? "|w| < 2^-16" : "|w| < 4096";
            foreach (var (R, I, O) in new[] { (1, 769, 33), (12, 40, 65), (70, 33, 65) })
            {
                float[] x = Rand((long)R * I), w = Rand((long)O * I, scale), b = Rand(O, scale);
                yield return WeightMatMul($"matmul+bias (f16 weights, {range})", WeightPrecision.Float16, R, I, O, x,
                    w, b);
            }
            float[] wte = Rand(100L * 33, scale), wpe = Rand(10L * 33, scale);
            yield return WeightEmbedding($"embedding (f16 wte, {range})", WeightPrecision.Float16, [3, 0, 99], 2, wte,
                wpe, 33);
        }
        foreach (var (R, D) in new[] { (1, 7), (7, 33), (33, 769), (2, 1600) })
        {
            float[] x = Rand((long)R * D, 3), g = Rand(D), bt = Rand(D);
            yield return Compare("layernorm", $"[{R}×{D}]", be =>
            {
                using var xb = be.Upload(x);
                using var gb = be.Upload(g);
                using var bb = be.Upload(bt);
                using var y = Zeros(be, (long)R * D);
                be.LayerNorm(xb, gb, bb, y, R, D, 1e-5f);
                return Read(be, y);
            });
        }
        foreach (int n in new[] { 1, 7, 769, 50257 })
        {
            float[] x = Rand(n, 5), z = Rand(n);
            yield return Compare("gelu", $"[{n}]",
                be => { using var xb = Output(be, x); be.Gelu(xb, n); return Read(be, xb); });
            yield return Compare("add", $"[{n}]",
                be => { using var xb = Output(be, x); using var zb = be.Upload(z); be.Add(xb, zb, n); return Read(be,
                xb); });
            yield return Compare("copy", $"[{n}]",
                be => { using var xb = be.Upload(x); using var y = Zeros(be, n + 3); be.Copy(xb, 0, y, 3,
                n); return Read(be, y); });
        }
        {
            int V = 1000, P = 40;
            int[] ids = Enumerable.Range(0, 7).Select(_ => rng.Next(V)).ToArray();
            foreach (var precision in new[] { WeightPrecision.Float32, WeightPrecision.Float16,
                WeightPrecision.BFloat16, WeightPrecision.Q8_0, WeightPrecision.Q4_0 })
            {
                // Q8_0 and Q4_0 rows are whole blocks of 32
                int D = precision is WeightPrecision.Q8_0 or WeightPrecision.Q4_0 ? 64 : 33;
                float[] wte = Rand((long)V * D), wpe = Rand((long)P * D);
                string name = precision switch
                {
                    WeightPrecision.Float32 => "embedding", WeightPrecision.Float16 => "embedding (f16 wte)",
                    WeightPrecision.BFloat16 => "embedding (bf16 wte)", WeightPrecision.Q8_0 => "embedding (q8_0 wte)",
                    _ => "embedding (q4_0 wte)",
                };
                yield return WeightEmbedding(name, precision, ids, 5, wte, wpe, D);
            }
        }
        foreach (var (rows, past, heads, hd) in new[] { (1, 0, 1, 7), (7, 0, 4, 16), (1, 33, 4, 16), (5, 12, 3, 64),
            (33, 0, 2, 33), (1, 130, 2, 64), (3, 70, 2, 80), (70, 0, 1, 16) })
        {
            int E = heads * hd, cap = past + rows;
            float[] qkv = Rand((long)rows * 3 * E), kc = Rand((long)cap * E), vc = Rand((long)cap * E);
            foreach (bool wantProbs in new[] { false, true })
                yield return Compare(wantProbs ? "attention (weights)" : "attention",
                    $"rows {rows}, past {past}, {heads}×{hd}", be =>
                {
                    using var q = be.Upload(qkv); using var k = be.Upload(kc); using var v = be.Upload(vc);
                    using var y = Zeros(be, (long)rows * E); using var pr = Zeros(be, (long)heads * rows * cap);
                    be.Attention(q, k, v, y, wantProbs ? pr : null, rows, past, heads, hd);
                    return wantProbs ? Read(be, pr) : [.. Read(be, y), .. Read(be, k), .. Read(be, v)];
                });
        }
        // A float16 cache (on the devices that hold one): the past positions written by a prompt first, as a model
        // fills its cache, then the new rows.
        if (device.HoldsCache(KvCachePrecision.Float16))
            foreach (var (rows, past, heads, hd) in new[] { (1, 0, 1, 7), (1, 33, 4, 16), (5, 12, 3, 64),
                (33, 0, 2, 33), (1, 130, 2, 64), (3, 70, 2, 80), (4, 9, 2, 72), (2, 40, 2, 33), (1, 50, 1, 48) })
            {
                int E = heads * hd, cap = past + rows;
                float[] prompt = Rand((long)past * 3 * E, 4f), qkv = Rand((long)rows * 3 * E, 4f);
                yield return Compare("attention (f16 cache)", $"rows {rows}, past {past}, {heads}×{hd}", be =>
                {
                    using var k = be.AllocateCache((long)cap * E, KvCachePrecision.Float16);
                    using var v = be.AllocateCache((long)cap * E, KvCachePrecision.Float16);
                    using var y = Zeros(be, (long)cap * E); using var pr = Zeros(be, (long)heads * rows * cap);
                    if (past > 0)
                    {
                        using var p = be.Upload(prompt);
                        be.Attention(p, k, v, y, null, past, 0, heads, hd);
                    }
                    using var q = be.Upload(qkv);
                    be.Attention(q, k, v, y, pr, rows, past, heads, hd);
                    float[] keys = new float[k.Length], values = new float[v.Length];
                    be.Download(k, 0, keys);
                    be.Download(v, 0, values);
                    return [.. Read(be, y)[..(rows * E)], .. Read(be, pr), .. keys, .. values];
                });
            }
    }

    /// <summary>The largest difference between a kernel's output and its reference (NaN counts as infinite).</summary>
    public static KernelCheckResult Measure(string kernel, string shape, float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length)
            return new KernelCheckResult(kernel, shape, double.PositiveInfinity, double.PositiveInfinity);
        double maxAbs = 0, maxRef = 1e-30;
        for (int i = 0; i < expected.Length; i++)
        {
            double d = Math.Abs(expected[i] - actual[i]);
            if (double.IsNaN(d)) d = double.PositiveInfinity;
            maxAbs = Math.Max(maxAbs, d);
            maxRef = Math.Max(maxRef, Math.Abs(expected[i]));
        }
        return new KernelCheckResult(kernel, shape, maxAbs, maxAbs / maxRef);
    }
}
