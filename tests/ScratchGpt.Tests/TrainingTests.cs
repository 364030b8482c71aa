using System.Runtime.Intrinsics.X86;
using ScratchGpt.Backends.Cpu;
using ScratchGpt.Loading;
using ScratchGpt.Model;
using ScratchGpt.Training;
using ScratchGpt.Training.Kernels;

namespace ScratchGpt.Tests;

public class TrainingTests
{
    private static Gpt2Config SmallConfig => new()
    {
        VocabSize = 37,
        NPositions = 16,
        NEmbd = 16,
        NLayer = 2,
        NHead = 2,
    };

    /// <summary>Random parameters with larger spread than GPT-2's init, so every gradient is far from zero.</summary>
    private static Gpt2Parameters RandomParameters(Gpt2Config c, int seed)
    {
        var p = new Gpt2Parameters(c);
        var rng = new Random(seed);
        for (int i = 0; i < p.Count; i++) p.Values[i] = (float)(0.3 * Gpt2Parameters.StandardNormal(rng));
        foreach (var t in p.Tensors.Where(t => t.Name.Contains("ln_") && t.Name.EndsWith("weight")))
            for (int i = 0; i < t.Length; i++) p.Values[t.Offset + i] += 1f;
        return p;
    }

    private static float[] RandomFloats(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)Gpt2Parameters.StandardNormal(rng)).ToArray();
    }

    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(4, 4, 8)]
    [InlineData(67, 70, 37)]
    [InlineData(130, 9, 264)]
    [InlineData(130, 17, 8200)]   // A in three passes of 64 rows (2 MB of panels), K not a multiple of 8
    public void Gemm_matches_the_reference_loop(int m, int n, int k)
    {
        float[] a = RandomFloats(m * k, 1), b = RandomFloats(n * k, 2), bias = RandomFloats(n, 3);
        float[] start = RandomFloats(m * n, 4);
        foreach (bool accumulate in new[] { false, true })
        {
            float[] fast = (float[])start.Clone(), tiles = (float[])start.Clone(), slow = (float[])start.Clone();
            Gemm.MatMulNT(a, b, fast, m, n, k, bias, accumulate);   // the panels from one panel of rows up
            Gemm.MatMulNTTiles(a, b, tiles, m, n, k, bias, accumulate);
            Gemm.MatMulNTReference(a, b, slow, m, n, k, bias, accumulate);
            Assert.True(Fixtures.MaxAbsDiff(slow, fast) <= 1e-4f * Math.Sqrt(k), $"accumulate={accumulate}");
            Assert.True(Fixtures.MaxAbsDiff(slow, tiles) <= 1e-4f * Math.Sqrt(k), $"tiles, accumulate={accumulate}");
            // both blockings wherever the CPU has them: the 16 × 6 one of AVX2 CPUs runs on AVX-512 ones too
            foreach (var blocking in new[] { PackedGemm.Narrow, PackedGemm.Wide })
            {
                if (!PackedGemm.IsSupported || blocking == PackedGemm.Wide && !Avx512F.IsSupported) continue;
                float[] panels = (float[])start.Clone();
                PackedGemm.MatMulNT(blocking, a, b, null, panels, m, n, k, bias, accumulate);
                Assert.True(Fixtures.MaxAbsDiff(slow, panels) <= 1e-4f * Math.Sqrt(k), $"{blocking}, {accumulate}");
            }
        }
    }

    [Fact]
    public void Gelu_derivative_matches_finite_differences()
    {
        foreach (double x in new[] { -5.0, -2.1, -0.7, -0.01, 0, 0.3, 1.4, 3.9 })
        {
            double fd = (ReferenceGpt2.Gelu(x + 1e-6) - ReferenceGpt2.Gelu(x - 1e-6)) / 2e-6;
            Assert.True(Math.Abs(GeluOp.Derivative((float)x) - fd) <= 1e-5,
                $"x={x}: {GeluOp.Derivative((float)x)} vs {fd}");
        }
    }

    [Fact]
    public void The_vectorized_gelu_gives_the_bits_of_its_scalar_expressions()
    {
        var rng = new Random(3);
        float[] x = Enumerable.Range(0, 300).Select(i => (float)((rng.NextDouble() * 2 - 1) * Math.Pow(10, i % 7 - 3)))
            .ToArray();   // 300: whole chunks of 256 and of 8, and a tail of each
        float[] t = x.Select(v => 0.7978845608028654f * (v + 0.044715f * v * v * v)).ToArray();
        System.Numerics.Tensors.TensorPrimitives.Tanh(t, t);
        float[] want = x.Select((v, i) => 0.5f * v * (1f + t[i])).ToArray();
        float[] got = (float[])x.Clone();
        Backends.Cpu.CpuKernels.Gelu(got);
        Assert.Equal(want, got);
    }

    [Fact]
    public void LayerNorm_backward_matches_finite_differences()
    {
        const int rows = 3, dim = 8;
        float[] x = RandomFloats(rows * dim, 5), g = RandomFloats(dim, 6), b = RandomFloats(dim, 7),
            w = RandomFloats(rows * dim, 8);
        // Objective: L = Σ w ⊙ layernorm(x), so dL/dy = w.
        double L(double[] xs, double[] gs, double[] bs)
        {
            double total = 0;
            for (int r = 0; r < rows; r++)
            {
                double mean = 0, var = 0;
                for (int i = 0; i < dim; i++) mean += xs[r * dim + i];
                mean /= dim;
                for (int i = 0; i < dim; i++) var += Math.Pow(xs[r * dim + i] - mean, 2);
                double rstd = 1 / Math.Sqrt(var / dim + 1e-5);
                for (int i = 0; i < dim; i++)
                    total += w[r * dim + i] * ((xs[r * dim + i] - mean) * rstd * gs[i] + bs[i]);
            }
            return total;
        }
        float[] y = new float[rows * dim], mean = new float[rows], rstd = new float[rows];
        LayerNormOp.Forward(x, g, b, y, mean, rstd, rows, dim, 1e-5f);
        float[] dx = new float[rows * dim], dg = new float[dim], db = new float[dim];
        LayerNormOp.Backward(w, x, g, mean, rstd, dx, dg, db, rows, dim, accumulate: false);
        double[] X = x.Select(v => (double)v).ToArray(), G = g.Select(v => (double)v).ToArray(),
            B = b.Select(v => (double)v).ToArray();
        AssertGradient(dx, X, () => L(X, G, B), "dx");
        AssertGradient(dg, G, () => L(X, G, B), "dgamma");
        AssertGradient(db, B, () => L(X, G, B), "dbeta");
    }

    [Fact]
    public void Attention_backward_matches_finite_differences()
    {
        const int batch = 2, seq = 5, heads = 2, D = 3, E = heads * D;
        float[] qkv = RandomFloats(batch * seq * 3 * E, 9), w = RandomFloats(batch * seq * E, 10);
        double L(double[] q)
        {
            double total = 0;
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int t = 0; t < seq; t++)
                    {
                        var s = new double[t + 1];
                        for (int u = 0; u <= t; u++)
                        {
                            for (int d = 0; d < D; d++)
                                s[u] += q[(b * seq + t) * 3 * E + h * D + d] * q[(b * seq + u) * 3 * E + E + h * D + d];
                            s[u] /= Math.Sqrt(D);
                        }
                        double max = s.Max(), sum = s.Sum(z => Math.Exp(z - max));
                        for (int u = 0; u <= t; u++)
                            for (int d = 0; d < D; d++)
                                total += w[(b * seq + t) * E + h * D
                                    + d] * Math.Exp(s[u] - max) / sum * q[(b * seq + u) * 3 * E + 2 * E + h * D + d];
                    }
            return total;
        }
        float[] y = new float[batch * seq * E], probs = new float[batch * heads * seq * seq],
            dqkv = new float[qkv.Length];
        AttentionOp.Forward(qkv, y, probs, batch, seq, heads, D);
        AttentionOp.Backward(qkv, probs, w, dqkv, batch, seq, heads, D);
        double[] Q = qkv.Select(v => (double)v).ToArray();
        AssertGradient(dqkv, Q, () => L(Q), "dqkv");
        Assert.True(Math.Abs(y.Select((v, i) => (double)v * w[i]).Sum() - L(Q)) <= 1e-4, "forward");
    }

    [Fact]
    public void Whole_model_gradients_match_finite_differences_of_a_float64_reference()
    {
        var c = SmallConfig;
        var p = RandomParameters(c, 11);
        const int batch = 2, seq = 6;
        var rng = new Random(12);
        int[] ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(c.VocabSize)).ToArray();
        int[] targets = Enumerable.Range(0, batch * seq).Select(i => i % 5 == 4 ? -1 : rng.Next(c.VocabSize)).ToArray();
        var model = new Gpt2TrainingModel(p);
        var grads = new float[p.Count];
        double loss = model.LossAndGradients(ids, targets, batch, seq, grads);
        double[] v = p.Values.Select(x => (double)x).ToArray();
        double refLoss = ReferenceGpt2.Loss(p, v, ids, targets, batch, seq);
        Assert.True(Math.Abs(loss - refLoss) <= 1e-5 * Math.Max(1, refLoss), $"loss {loss} vs reference {refLoss}");

        // Every tensor, several entries each, against central differences in float64.
        foreach (var t in p.Tensors)
        {
            var idx = new Random(t.Offset).Next(t.Length);
            foreach (int i in new[] { 0, idx, t.Length - 1 }.Distinct())
            {
                int k = t.Offset + i;
                double keep = v[k], h = 1e-5;
                v[k] = keep + h; double up = ReferenceGpt2.Loss(p, v, ids, targets, batch, seq);
                v[k] = keep - h; double down = ReferenceGpt2.Loss(p, v, ids, targets, batch, seq);
                v[k] = keep;
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(grads[k] - fd) <= 2e-4 + 2e-3 * Math.Abs(fd),
                    $"{t.Name}[{i}]: backward {grads[k]} vs finite difference {fd}");
            }
        }
    }

    [Fact]
    public void Dropout_gradients_match_finite_differences_under_the_same_masks()
    {
        var c = SmallConfig;
        var p = RandomParameters(c, 21);
        const int batch = 2, seq = 6;
        var rng = new Random(22);
        int[] ids = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(c.VocabSize)).ToArray();
        int[] targets = Enumerable.Range(0, batch * seq).Select(_ => rng.Next(c.VocabSize)).ToArray();
        var model = new Gpt2TrainingModel(p) { Dropout = (0.2f, 0.3f, 0.25f), DropoutSeed = 99 };
        var grads = new float[p.Count];
        double loss = model.LossAndGradients(ids, targets, batch, seq, grads);
        Assert.True(Math.Abs(loss - model.Loss(ids, targets, batch, seq)) > 1e-3, "dropout changes the training loss");
        // The seed fixes the masks, so the training-mode loss is a deterministic function to differentiate.
        var scratch = new float[p.Count];
        double TrainLoss() => model.LossAndGradients(ids, targets, batch, seq, scratch);
        Assert.Equal(loss, TrainLoss());
        foreach (var t in p.Tensors)
            foreach (int i in new[] { 0, new Random(t.Offset).Next(t.Length) }.Distinct())
            {
                int k = t.Offset + i;
                float keep = p.Values[k], h = 1e-2f;
                p.Values[k] = keep + h; double up = TrainLoss();
                p.Values[k] = keep - h; double down = TrainLoss();
                p.Values[k] = keep;
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(grads[k] - fd) <= 2e-3 + 3e-2 * Math.Abs(fd),
                    $"{t.Name}[{i}]: backward {grads[k]} vs finite difference {fd}");
            }
    }

    [Fact]
    public void Training_forward_gives_the_fixture_models_loss()
    {
        // The inference model is checked against transformers; the training forward must agree with it.
        var model = Fixtures.Load("tiny-gpt2");
        int[] ids = Fixtures.Tokenizer.Encode("ROMEO:\nBut soft, what light through yonder window breaks?");
        var logits = model.Forward(ids).Logits;
        double expected = 0;
        for (int t = 0; t + 1 < ids.Length; t++)
        {
            var row = logits.AsSpan(t * model.VocabSize, model.VocabSize);
            double max = row.ToArray().Max(), sum = 0;
            foreach (float z in row) sum += Math.Exp(z - max);
            expected += Math.Log(sum) + max - row[ids[t + 1]];
        }
        expected /= ids.Length - 1;
        var p = Gpt2Parameters.Load(Fixtures.Model("tiny-gpt2"));
        int[] targets = ids.Skip(1).Append(-1).ToArray();
        double loss = new Gpt2TrainingModel(p).Loss(ids, targets, 1, ids.Length);
        Assert.True(Math.Abs(loss - expected) <= 1e-4, $"{loss} vs {expected}");
    }

    [Fact]
    public void Saved_parameters_load_back_in_the_save_pretrained_layout()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-save").FullName;
        try
        {
            var p = Gpt2Parameters.Load(Fixtures.Model("tiny-gpt2"));
            p.SaveSafetensors(Path.Combine(dir, "model.safetensors"));
            using (var a = SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            using (var b = SafetensorsFile.Open(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors")))
            {
                Assert.Equal(b.Tensors.Keys.Order(), a.Tensors.Keys.Order());
                foreach (var name in b.Tensors.Keys)
                {
                    Assert.Equal(b.Tensors[name].Shape, a.Tensors[name].Shape);
                    Assert.Equal(b.ReadFloat32(name), a.ReadFloat32(name));
                }
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    private static void AssertGradient(float[] analytic, double[] input, Func<double> loss, string what)
    {
        for (int i = 0; i < input.Length; i++)
        {
            double keep = input[i], h = 1e-6;
            input[i] = keep + h; double up = loss();
            input[i] = keep - h; double down = loss();
            input[i] = keep;
            double fd = (up - down) / (2 * h);
            Assert.True(Math.Abs(analytic[i] - fd) <= 1e-4 + 1e-3 * Math.Abs(fd),
                $"{what}[{i}]: {analytic[i]} vs {fd}");
        }
    }
}

public class HalfDotTests
{
    [Fact]
    public void Fused_float16_dot_widens_every_finite_half_exactly()
    {
        var x = new float[16];
        var w = new Half[16];
        for (int bits = 0; bits < 0x10000; bits++)
        {
            var h = BitConverter.UInt16BitsToHalf((ushort)bits);
            if (!Half.IsFinite(h)) continue;
            int lane = bits % 16;            // every lane of the vector path gets used
            Array.Fill(w, (Half)3);
            w[lane] = h;
            Array.Clear(x);
            x[lane] = 1f;
            float got = Backends.Cpu.CpuKernels.DotHalf(w, x);
            Assert.True(BitConverter.SingleToInt32Bits(got) == BitConverter.SingleToInt32Bits((float)h)
                || (got == 0 && (float)h == 0), $"half 0x{bits:x4}: {got} vs {(float)h}");
        }
    }

    [Fact]
    public void Widening_gives_every_finite_half_exactly_with_its_sign()
    {
        var halves = Enumerable.Range(0, 0x10000).Select(b => BitConverter.UInt16BitsToHalf((ushort)b))
            .Where(Half.IsFinite).ToArray();
        var wide = new float[halves.Length];
        Backends.Cpu.CpuKernels.WidenHalf(halves, wide);
        for (int i = 0; i < halves.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(wide[i]) == BitConverter.SingleToInt32Bits((float)halves[i]),
                $"half 0x{BitConverter.HalfToUInt16Bits(halves[i]):x4}: {wide[i]} vs {(float)halves[i]}");
    }

    [Theory]
    [InlineData(1f, 10)]        // every finite half below 64: the full shift, no subnormal left
    [InlineData(1000f, 6)]      // up to 1000 · 2^6 = 64000 ≤ 65504; 2^7 would overflow
    [InlineData(65504f, 0)]     // the largest half: no room at all
    public void Float16_weights_are_stored_times_a_power_of_two_and_widen_back_exactly(float largest, int shift)
    {
        // Every finite half below 64 in magnitude (subnormals and zero included), and the largest value.
        var values = Enumerable.Range(0, 0x10000).Select(b => BitConverter.UInt16BitsToHalf((ushort)b))
            .Where(h => Half.IsFinite(h) && Math.Abs((float)h) < 64).Select(h => (float)h).Append(largest).ToArray();
        var f16 = Backends.Cpu.Float16Weights.From(values);
        Assert.Equal(shift, f16.Shift);
        var stored = f16.Halves.Span;
        int subnormal = 0;
        for (int i = 0; i < values.Length; i++)
        {
            Assert.Equal(values[i] * MathF.ScaleB(1f, shift), (float)stored[i]);
            if (Half.IsSubnormal(stored[i])) subnormal++;
        }
        // With the full shift nothing is subnormal; with a smaller one, the values below 2^-14 · 2^-shift still are
        // (2 · 1023 with none, 2 · 15 at 2^6).
        Assert.Equal(shift switch { 10 => 0, 6 => 30, _ => 2046 }, subnormal);
        var wide = new float[values.Length];
        f16.WidenRows(0, 1, values.Length, wide);
        for (int i = 0; i < values.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(wide[i]) == BitConverter.SingleToInt32Bits(values[i]),
                $"value {values[i]}: widened to {wide[i]}");
    }

    [Theory]
    [InlineData(16, 64, 768)]
    [InlineData(37, 130, 50)]
    [InlineData(70, 21, 100)]
    public void Float16_gemm_equals_the_float32_gemm_on_the_widened_weights(int m, int n, int k)
    {
        var rng = new Random(m + n + k);
        var a = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var w = Enumerable.Range(0, n * k).Select(_ => (Half)(rng.NextDouble() * 2 - 1)).ToArray();
        var bias = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        var wide = w.Select(h => (float)h).ToArray();
        float[] c16 = new float[m * n], c32 = new float[m * n];
        Backends.Cpu.Gemm.MatMulNT(a, Backends.Cpu.Float16Weights.From(wide), c16, m, n, k, bias);
        Backends.Cpu.Gemm.MatMulNT(a, wide, c32, m, n, k, bias);
        Assert.Equal(c32, c16);
    }

    [Theory]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(773)]
    public void Fused_float16_dot_matches_a_float64_reference(int n)
    {
        var rng = new Random(n);
        var w = Enumerable.Range(0, n).Select(_ => (Half)(rng.NextDouble() * 4 - 2)).ToArray();
        var x = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        double expected = 0;
        for (int i = 0; i < n; i++) expected += (double)(float)w[i] * x[i];
        Assert.Equal(expected, Backends.Cpu.CpuKernels.DotHalf(w, x), 1e-4 * Math.Sqrt(n));
    }
}
