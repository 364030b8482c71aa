using System.Runtime.InteropServices;
using ScratchGpt.Backends;
using ScratchGpt.Backends.Cpu;
using ScratchGpt.Backends.Ilgpu;
using ScratchGpt.Training.Kernels;

namespace ScratchGpt.Training;

/// <summary>
/// The training kernels of kernels/ (what <see cref="DeviceTrainingModel"/> launches through
/// <see cref="IlgpuBackend"/>) against their CPU references (<see cref="Gemm"/>, <see cref="LayerNormOp"/>,
/// <see cref="GeluOp"/>, <see cref="AttentionOp"/>, and plain loops for the rest), on random inputs of sizes that are
/// no multiple of a tile. The forward-pass kernels are <see cref="KernelCheck"/>'s; `scratchgpt kernels test` prints
/// both tables.
/// </summary>
public static class TrainingKernelCheck
{
    public static IEnumerable<KernelCheckResult> Run(IlgpuBackend gpu, int seed = 0, bool small = false)
    {
        var rng = new Random(seed);
        float[] Rand(long n, float scale = 1f)
        {
            var a = new float[n];
            for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale;
            return a;
        }
        float[] Read(IDeviceBuffer b) { var a = new float[b.Length]; gpu.Download(b, 0, a); return a; }
        IDeviceBuffer Up(float[] a) => gpu.Upload(a);
        IDeviceBuffer UpInts(int[] a) => gpu.Upload(MemoryMarshal.Cast<int, float>(a.AsSpan()));

        // gemm in its three uses, each accumulating into a non-zero c: x·Wᵀ, dy·W, dyᵀ·x.
        foreach (var (m, k, n) in new[] { (1, 7, 1), (7, 33, 769), (33, 769, 7), (17, 50, 257), (70, 40, 130) })
        {
            float[] x = Rand((long)m * k), w = Rand((long)n * k), dy = Rand((long)m * n), c0 = Rand((long)m * n);
            var cases = new (string Name, float[] A, int ARow, int ACol, float[] B, int BRow, int BCol, int M, int N,
                int K)[]
            {
                ("gemm x·Wᵀ", x, k, 1, w, 1, k, m, n, k),
                ("gemm dy·W", dy, n, 1, w, k, 1, m, k, n),
                ("gemm dyᵀ·x", dy, 1, n, x, k, 1, n, k, m),
            };
            foreach (var g in cases)
            {
                var c = Rand((long)g.M * g.N);
                var expected = (float[])c.Clone();
                for (int i = 0; i < g.M; i++)
                    for (int j = 0; j < g.N; j++)
                    {
                        double s = 0;
                        for (int t = 0; t < g.K; t++)
                            s += (double)g.A[i * g.ARow + t * g.ACol] * g.B[t * g.BRow + j * g.BCol];
                        expected[i * g.N + j] += (float)s;
                    }
                using var a = Up(g.A); using var b = Up(g.B); using var cb = Up(c);
                gpu.Gemm(a, g.ARow, g.ACol, b, g.BRow, g.BCol, cb, g.M, g.N, g.K, accumulate: true);
                yield return Compare(g.Name, $"[{g.M}×{g.K}]·[{g.K}×{g.N}] (+=)", expected, Read(cb));
            }
            {
                var db = Rand(n); var expected = (float[])db.Clone();
                Gemm.AddColumnSums(dy, expected, m, n);
                using var d = Up(dy); using var bb = Up(db);
                gpu.ColumnSums(d, bb, m, n);
                yield return Compare("column_sums", $"[{m}×{n}]", expected, Read(bb));
            }
        }

        // layernorm with saved statistics, then both halves of its backward.
        foreach (var (rows, dim) in new[] { (1, 7), (7, 33), (33, 769) })
        {
            float[] x = Rand((long)rows * dim, 3), gamma = Rand(dim), beta = Rand(dim), dy = Rand((long)rows * dim),
                dx0 = Rand((long)rows * dim);
            float[] y = new float[rows * dim], mean = new float[rows], rstd = new float[rows];
            LayerNormOp.Forward(x, gamma, beta, y, mean, rstd, rows, dim, 1e-5f);
            float[] dx = (float[])dx0.Clone(), dGamma = new float[dim], dBeta = new float[dim];
            LayerNormOp.Backward(dy, x, gamma, mean, rstd, dx, dGamma, dBeta, rows, dim, accumulate: true);
            using var xb = Up(x);
            using var gb = Up(gamma);
            using var bb = Up(beta);
            using var yb = gpu.Allocate(rows * dim);
            using var mb = gpu.Allocate(rows); using var rb = gpu.Allocate(rows);
            gpu.LayerNorm(xb, gb, bb, yb, mb, rb, rows, dim, 1e-5f);
            yield return Compare("layernorm (saving mean, rstd)", $"[{rows}×{dim}]", [.. y, .. mean, .. rstd],
                [.. Read(yb), .. Read(mb), .. Read(rb)]);
            using var dyb = Up(dy);
            using var dxb = Up(dx0);
            using var dgb = gpu.Allocate(dim);
            using var dbb = gpu.Allocate(dim);
            gpu.LayerNormBackward(dyb, xb, gb, mb, rb, dxb, rows, dim, accumulate: true);
            yield return Compare("layernorm_backward (+=)", $"[{rows}×{dim}]", dx, Read(dxb));
            gpu.LayerNormParameterGradients(dyb, xb, mb, rb, dgb, dbb, rows, dim);
            yield return Compare("layernorm_param_grads", $"[{rows}×{dim}]", [.. dGamma, .. dBeta],
                [.. Read(dgb), .. Read(dbb)]);
        }

        foreach (int n in new[] { 1, 7, 769, 50257 })
        {
            float[] x = Rand(n, 5), d = Rand(n), mask = Rand(n);
            var expected = new float[n];
            GeluOp.Backward(x, d, expected);
            using (var xb = Up(x)) using (var db = Up(d))
            {
                gpu.GeluBackward(xb, db, n);
                yield return Compare("gelu_backward", $"[{n}]", expected, Read(db));
            }
            using (var db = Up(d)) using (var mb = Up(mask))
            {
                gpu.Multiply(db, mb, n);
                yield return Compare("mul_inplace", $"[{n}]", d.Zip(mask, (a, b) => a * b).ToArray(), Read(db));
            }
        }

        // Attention over whole sequences, with and without a dropout mask, forward and backward.
        foreach (var (batch, seq, heads, hd) in new[] { (1, 1, 1, 7), (2, 13, 3, 8), (1, 33, 2, 33) })
            foreach (bool masked in new[] { false, true })
            {
                int E = heads * hd, N = batch * seq, S = batch * heads * seq * seq;
                float[] qkv = Rand((long)N * 3 * E), dy = Rand((long)N * E);
                float[] mask = masked ? Rand(S).Select(v => v < -0.8f ? 0f : 1.25f).ToArray() : [];
                float[] y = new float[N * E], probs = new float[S], dqkv = new float[N * 3 * E];
                AttentionOp.Forward(qkv, y, probs, batch, seq, heads, hd, mask);
                AttentionOp.Backward(qkv, probs, dy, dqkv, batch, seq, heads, hd, mask);
                using var qb = Up(qkv);
                using var yb = gpu.Allocate(N * E);
                using var pb = gpu.Allocate(S);
                using var mb = Up(masked ? mask : [0f]);
                using var dyb = Up(dy); using var dsb = gpu.Allocate(S); using var dqb = gpu.Allocate((long)N * 3 * E);
                string shape = $"{batch}×{seq}, {heads}×{hd}{(masked ? ", dropout mask" : "")}";
                gpu.AttentionTrain(qb, yb, pb, masked ? mb : null, batch, seq, heads, hd);
                yield return Compare("attention_train", shape, [.. y, .. probs], [.. Read(yb), .. Read(pb)]);
                gpu.AttentionBackward(qb, pb, masked ? mb : null, dyb, dsb, dqb, batch, seq, heads, hd);
                yield return Compare("attention_backward (q, k, v)", shape, dqkv, Read(dqb));
            }

        {
            int V = 1000, seq = 9, rows = 27, dim = 33;
            int[] ids = Enumerable.Range(0, rows).Select(_ => rng.Next(40)).ToArray();   // repeats on purpose
            float[] dx = Rand((long)rows * dim), dwte = Rand((long)V * dim), dwpe = Rand((long)seq * dim);
            float[] eWte = (float[])dwte.Clone(), eWpe = (float[])dwpe.Clone();
            for (int t = 0; t < rows; t++)
                for (int i = 0; i < dim; i++)
                {
                    eWte[ids[t] * dim + i] += dx[t * dim + i];
                    eWpe[t % seq * dim + i] += dx[t * dim + i];
                }
            using var ib = UpInts(ids); using var xb = Up(dx); using var wb = Up(dwte); using var pb = Up(dwpe);
            gpu.EmbeddingBackward(ib, xb, wb, pb, rows, seq, dim);
            yield return Compare("embedding_backward", $"{rows} ids (repeating), dim {dim}", [.. eWte, .. eWpe],
                [.. Read(wb), .. Read(pb)]);
        }

        foreach (var (rows, vocab) in new[] { (1, 7), (5, 769), (3, small ? 2053 : 50257) })
        {
            float[] logits = Rand((long)rows * vocab, 4);
            int[] targets = Enumerable.Range(0, rows).Select(r => r == 1 ? -100 : rng.Next(vocab)).ToArray();
            const float weight = 0.25f;
            float[] loss = new float[rows], grad = new float[rows * vocab];
            for (int r = 0; r < rows; r++)
            {
                if (targets[r] < 0) continue;
                var row = logits.AsSpan(r * vocab, vocab);
                double max = System.Numerics.Tensors.TensorPrimitives.Max(row), sum = 0;
                foreach (float v in row) sum += Math.Exp(v - max);
                loss[r] = (float)(Math.Log(sum) + max - row[targets[r]]);
                for (int v = 0; v < vocab; v++)
                    grad[r * vocab + v] = (float)(Math.Exp(row[v] - max) / sum * weight) - (v == targets[r] ? weight
                        : 0f);
            }
            using var lb = Up(logits); using var tb = UpInts(targets); using var lossb = gpu.Allocate(rows);
            gpu.CrossEntropy(lb, tb, lossb, rows, 0, vocab, weight);
            yield return Compare("cross_entropy (loss, dlogits)", $"[{rows}×{vocab}], one row without target",
                [.. loss, .. grad], [.. Read(lossb), .. Read(lb)]);
        }

        foreach (int n in new[] { 1, 7, 769, small ? 20_003 : 100_003 })
        {
            float[] p = Rand(n), g = Rand(n), m = Rand(n, 0.1f), v = Rand(n, 0.01f).Select(Math.Abs).ToArray();
            const float lr = 1e-3f, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f, decay = 0.9999f, c1 = 0.271f, c2 = 0.00399f,
                scale = 0.5f;
            float[] ep = (float[])p.Clone(), em = (float[])m.Clone(), ev = (float[])v.Clone();
            for (int i = 0; i < n; i++)
            {
                float gi = g[i] * scale;
                em[i] = b1 * em[i] + (1 - b1) * gi;
                ev[i] = b2 * ev[i] + (1 - b2) * gi * gi;
                ep[i] = ep[i] * decay - lr * (em[i] / c1) / (MathF.Sqrt(ev[i] / c2) + eps);
            }
            using var pb = Up(p); using var gb = Up(g); using var mb = Up(m); using var vb = Up(v);
            gpu.AdamW(pb, gb, mb, vb, n,
                new ScratchGpt.Kernels.AdamWStep { LearningRate = lr, Beta1 = b1, Beta2 = b2, Epsilon = eps,
                Decay = decay, Correction1 = c1, Correction2 = c2, GradScale = scale });
            yield return Compare("adamw (p, m, v)", $"[{n}]", [.. ep, .. em, .. ev],
                [.. Read(pb), .. Read(mb), .. Read(vb)]);
            using var partial = gpu.Allocate(2 * 64);
            gpu.SumSquares(gb, n, partial, 1);
            double expected = g.Sum(x => (double)x * x);
            yield return Compare("sum_squares", $"[{n}]", [(float)expected], [Read(partial).Skip(64).Sum()]);
        }
    }

    private static KernelCheckResult Compare(string kernel, string shape, float[] expected, float[] actual) =>
        KernelCheck.Measure(kernel, shape, expected, actual);
}
