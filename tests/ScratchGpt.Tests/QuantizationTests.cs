using System.Runtime.Intrinsics.X86;
using System.Text.Json.Nodes;
using ScratchGpt.Backends;
using ScratchGpt.Decoding;
using ScratchGpt.Model;
using Xunit.Abstractions;

namespace ScratchGpt.Tests;

/// <summary>What Q8_0 weights cost: the fixtures' greedy and beam generations, token for token, and the perplexity
/// of held-out text, with the matrices quantized at load against the float32 model.</summary>
public class QuantizationTests(ITestOutputHelper output)
{
    private static Gpt2Model Load(WeightPrecision precision) => Gpt2Model.Load(Fixtures.Model("tiny-gpt2"),
        new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir, Precision = precision });

    [Fact]
    public void Q8_0_keeps_the_fixtures_generations_nearly_token_for_token()
    {
        var (cases, identical) = GreedyAgreement(WeightPrecision.Q8_0);
        Assert.True(cases >= 20);
        Assert.True(identical >= cases * 3 / 4, $"only {identical} of {cases} generations survive Q8_0");
    }

    [Fact]
    public void Q4_0_keeps_most_of_the_fixtures_generations()
    {
        var (cases, identical) = GreedyAgreement(WeightPrecision.Q4_0);
        Assert.True(cases >= 20);
        Assert.True(identical >= cases / 2, $"only {identical} of {cases} generations survive Q4_0");
    }

    /// <summary>The deterministic fixture generations (greedy, beam, n-gram blocking) with the matrices quantized:
    /// how many come out token for token as transformers' float32 ones.</summary>
    private (int Cases, int Identical) GreedyAgreement(WeightPrecision precision)
    {
        using var quantized = Load(precision);
        Assert.Equal(precision, quantized.Precision);
        int cases = 0, identical = 0, tokens = 0, same = 0;
        foreach (var c in Fixtures.Json("generation.json")["cases"]!.AsArray())
        {
            var kwargs = c!["generate_kwargs"]!;
            if (kwargs["do_sample"]?.GetValue<bool>() == true) continue;
            int[] prompt = Fixtures.Ints(c["input_ids"]);
            int[] want = Fixtures.Ints(c["sequences"]![0]);
            int[] got = new Generator(quantized).Generate(prompt, GenerationTests.ConfigFrom(kwargs)).Sequences[0].Ids;
            cases++;
            if (got.SequenceEqual(want)) identical++;
            // Tokens up to the first difference: after it the two continuations are different texts.
            int n = prompt.Length;
            while (n < Math.Min(want.Length, got.Length) && want[n] == got[n]) n++;
            tokens += want.Length - prompt.Length;
            same += n - prompt.Length;
        }
        output.WriteLine($"{precision}: {identical} of {cases} deterministic fixture generations identical; {same} " +
            $"of {tokens} new tokens before the first difference");
        return (cases, identical);
    }

    [Fact]
    public void Q8_0_moves_the_held_out_perplexity_by_under_one_percent()
    {
        var (a, b) = HeldOutPerplexity(WeightPrecision.Q8_0);
        Assert.True(Math.Abs(b / a - 1) < 0.01, $"float32 {a}, q8_0 {b}");
        Assert.NotEqual(a, b);   // the weights really were quantized
    }

    [Fact]
    public void Q4_0_moves_the_held_out_perplexity_by_under_five_percent()
    {
        var (a, b) = HeldOutPerplexity(WeightPrecision.Q4_0);
        Assert.True(Math.Abs(b / a - 1) < 0.05, $"float32 {a}, q4_0 {b}");
        Assert.NotEqual(a, b);
    }

    /// <summary>Perplexity of 4096 held-out Shakespeare tokens, float32 and quantized.</summary>
    private (double Float32, double Quantized) HeldOutPerplexity(WeightPrecision precision)
    {
        using var f32 = Load(WeightPrecision.Float32);
        using var quantized = Load(precision);
        double a = HeldOutPerplexity(f32), b = HeldOutPerplexity(quantized);
        output.WriteLine($"held-out perplexity (4096 tokens): float32 {a:F4}, {precision} {b:F4} " +
            $"({100 * (b / a - 1):+0.000;-0.000}%)");
        return (a, b);
    }

    /// <summary>4096 tokens from the last tenth of tinyshakespeare, encoded once for every model the tests score (all
    /// read the fixtures' tokenizer).</summary>
    private static readonly Lazy<int[]> HeldOutIds = new(() =>
    {
        string text = File.ReadAllText(Path.Combine(Fixtures.Dir, "..", "corpus", "tinyshakespeare.txt"));
        return Fixtures.Tokenizer.Encode(text[(int)(text.Length * 0.9)..])[..4096];
    });

    /// <summary>The perplexity of 4096 tokens from the last tenth of tinyshakespeare (held out of training), in
    /// windows of 256.</summary>
    internal static double HeldOutPerplexity(Gpt2Model m)
    {
        int[] ids = HeldOutIds.Value;
        double nll = 0; int n = 0;
        var logp = new float[m.VocabSize];
        for (int s = 0; s + 1 < ids.Length; s += 256)
        {
            int len = Math.Min(256, ids.Length - s);
            var r = m.Forward(ids.AsSpan(s, len));
            for (int t = 0; t + 1 < len; t++)
            {
                TokenMath.LogSoftmax(r.Row(t), logp);
                nll -= logp[ids[s + t + 1]];
                n++;
            }
        }
        return Math.Exp(nll / n);
    }

    [Fact]
    public void An_mlp_width_that_is_not_whole_blocks_is_refused_before_quantizing()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-ninner").FullName;
        try
        {
            foreach (var f in Directory.GetFiles(Fixtures.Model("tiny-gpt2")))
                File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var config = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!;
            config["n_inner"] = 40;
            File.WriteAllText(Path.Combine(dir, "config.json"), config.ToJsonString());
            var e = Assert.Throws<Loading.ModelLoadException>(() => Gpt2Model.Load(dir, new ModelLoadOptions
            {
                Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir, Precision = WeightPrecision.Q4_0,
            }));
            Assert.Equal($"{dir}: Q4_0 quantizes rows in blocks of 32; n_inner 40 is not a multiple", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData("q8_0", WeightPrecision.Q8_0)]
    [InlineData("q4_0", WeightPrecision.Q4_0)]
    public void A_quantized_checkpoint_loads_as_the_same_model_as_quantizing_at_load(string dtype,
        WeightPrecision precision)
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-" + dtype).FullName;
        try
        {
            var p = Training.Gpt2Parameters.Load(Fixtures.Model("tiny-gpt2"));
            p.SaveSafetensors(Path.Combine(dir, "model.safetensors"), dtype);
            File.WriteAllText(Path.Combine(dir, "config.json"), p.Config.ToJson(dtype));
            Assert.Contains($"\"quant_method\": \"{dtype}\"", File.ReadAllText(Path.Combine(dir, "config.json")));
            bool q4 = dtype == "q4_0";
            using (var f = Loading.SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            {
                var codes = f.Tensors["transformer.h.0.mlp.c_fc.weight"];
                Assert.Equal(q4 ? Loading.SafetensorsDType.U8 : Loading.SafetensorsDType.I8, codes.DType);
                Assert.Equal([256L, q4 ? 32 : 64], codes.Shape);        // [out, in], two codes a byte in Q4_0
                Assert.Equal([256L, 2], f.Tensors["transformer.h.0.mlp.c_fc.weight_scale"].Shape);
                Assert.Equal(Loading.SafetensorsDType.F32, f.Tensors["transformer.h.0.mlp.c_fc.bias"].DType);
            }
            long f32Bytes = new FileInfo(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors")).Length;
            Assert.True(new FileInfo(Path.Combine(dir, "model.safetensors")).Length < f32Bytes * (q4 ? 0.2 : 0.3));

            using var stored = Gpt2Model.Load(dir,
                new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir });
            using var atLoad = Load(precision);
            Assert.Equal(precision, stored.Precision);
            Assert.Equal(precision.ToString(), stored.CheckpointDType);
            int[] ids = stored.Tokenizer!.Encode("ROMEO: But soft, what light through yonder window breaks?");
            Assert.Equal(atLoad.Forward(ids).Logits, stored.Forward(ids).Logits);

            // the same file without one matrix's scales: one error naming the tensor it misses
            var w = new Loading.SafetensorsWriter();
            using (var f = Loading.SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
                foreach (var t in f.Tensors.Values.Where(t => t.Name != "transformer.h.1.attn.c_proj.weight_scale"))
                    w.Add(t.Name, t.DType, t.Shape.ToArray(), f.RawBytes(t).ToArray());
            w.Save(Path.Combine(dir, "model.safetensors"));
            var e = Assert.Throws<Loading.ModelLoadException>(() => Gpt2Model.Load(dir,
                new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir }));
            Assert.Contains($"tensor 'transformer.h.1.attn.c_proj.weight' needs " +
                $"'transformer.h.1.attn.c_proj.weight_scale' F16 [64, 2] ({precision} scales)", e.Message);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(24)]
    [InlineData(96)]
    public void The_integer_dot_product_is_each_blocks_exact_sum_times_both_scales(int blocks)
    {
        var rng = new Random(blocks);
        int n = blocks * Loading.Q8_0.BlockSize;
        sbyte[] qw = Enumerable.Range(0, n).Select(_ => (sbyte)rng.Next(-128, 128)).ToArray();   // -128 too
        sbyte[] qx = Enumerable.Range(0, n).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
        Half[] dh = Enumerable.Range(0, blocks).Select(_ => (Half)(rng.NextDouble() / 100)).ToArray();
        float[] dw = dh.Select(h => (float)h).ToArray();
        float[] dx = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble()).ToArray();
        double want = 0, magnitude = 0;
        for (int b = 0; b < blocks; b++)
        {
            long sum = 0;
            for (int i = b * 32; i < (b + 1) * 32; i++) sum += qw[i] * qx[i];
            want += (double)dw[b] * dx[b] * sum;
            magnitude += Math.Abs((double)dw[b] * dx[b] * sum);
        }
        float got = Backends.Cpu.CpuKernels.DotQ8(qw, dh, qx, dx);
        Assert.True(Math.Abs(got - want) <= 1e-6 * magnitude, $"{got} vs {want}");
        // every form of the kernel this CPU can run, not only the one DotQ8 picks here
        // with the scales as float32 and as float16 (the widening is exact: the same bits)
        foreach (var (name, form, halfForm) in DotQ8Forms())
        {
            float other = DotQ8With(form, qw, dw, qx, dx);
            Assert.True(Math.Abs(other - want) <= 1e-6 * magnitude, $"{name}: {other} vs {want}");
            Assert.Equal(other, DotQ8With(halfForm, qw, dh, qx, dx));
        }
    }

    [Theory]
    [InlineData(1, 16, 32, true)]
    [InlineData(4, 16, 64, false)]
    [InlineData(5, 40, 96, true)]     // a partial group of rows and a partial block of columns
    [InlineData(40, 77, 768, true)]   // several tasks on several cores
    [InlineData(7, 33, 3072, false)]
    public void The_integer_prefill_product_is_each_blocks_exact_sum_times_both_scales_for_q8_0_and_q4_0(int m,
        int n, int k, bool withBias)
    {
        var rng = new Random(m * 1000 + n);
        sbyte[] qw = Enumerable.Range(0, n * k).Select(_ => (sbyte)rng.Next(-128, 128)).ToArray();   // -128 too
        sbyte[] qx = Enumerable.Range(0, m * k).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
        // scales that are float16 values, the Q8_0 weights keeping them as such (Q4_0's are held as float32)
        Half[] dh = Enumerable.Range(0, n * k / 32).Select(_ => (Half)(rng.NextDouble() / 100)).ToArray();
        float[] dw = dh.Select(h => (float)h).ToArray();
        float[] dx = Enumerable.Range(0, m * k / 32).Select(_ => (float)rng.NextDouble()).ToArray();
        float[] bias = withBias ? Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray() : [];
        var w = new Backends.Cpu.Q8Weights(qw, dh);
        byte[] codes = Enumerable.Range(0, n * k / 2).Select(_ => (byte)rng.Next(256)).ToArray();
        var w4 = new Backends.Cpu.Q4Weights(codes, dw);
        var y = new float[m * n];
        if (!Backends.Cpu.Q8Gemm.IsSupported)
        {
            // this CPU has no AVX2: the product refuses, and the backend keeps the float GEMM
            Assert.Throws<PlatformNotSupportedException>(() =>
                Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w, bias, y, m, n, k));
            Assert.Throws<PlatformNotSupportedException>(() =>
                Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w4, bias, y, m, n, k));
            output.WriteLine("no AVX2 on this CPU: the integer prefill product did not run");
            return;
        }
        int blocks = k / 32;
        // Σ_b dx · dw · (block b's exact integer sum), with the block sum of row i and column j given
        void Check(string form, Func<int, int, int, long> blockSum)
        {
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double want = withBias ? bias[j] : 0, magnitude = Math.Abs(want);
                    for (int b = 0; b < blocks; b++)
                    {
                        double term = (double)dx[i * blocks + b] * dw[j * blocks + b] * blockSum(i, j, b);
                        want += term;
                        magnitude += Math.Abs(term);
                    }
                    Assert.True(Math.Abs(y[i * n + j] - want) <= 1e-6 * magnitude,
                        $"{form} [{i}, {j}]: {y[i * n + j]} vs {want}");
                }
        }
        long Q8Sum(int i, int j, int b)
        {
            long sum = 0;
            for (int p = b * 32; p < (b + 1) * 32; p++) sum += qx[i * k + p] * qw[j * k + p];
            return sum;
        }
        long Q4Sum(int i, int j, int b)   // codes c give weights dw · (c − 8)
        {
            long sum = 0;
            for (int p = 0; p < 16; p++)
            {
                byte pair = codes[(j * k + b * 32) / 2 + p];
                sum += ((pair & 0x0F) - 8) * qx[i * k + b * 32 + p] + ((pair >> 4) - 8) * qx[i * k + b * 32 + 16 + p];
            }
            return sum;
        }
        // the form this CPU runs, then each form it can run: with vpdpbusd (AVX-VNNI) and without (AVX2), same bits
        Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w, bias, y, m, n, k);
        Check("q8_0", Q8Sum);
        float[] q8 = (float[])y.Clone();
        Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w4, bias, y, m, n, k);
        Check("q4_0", Q4Sum);
        float[] q4 = (float[])y.Clone();
        foreach (bool vnni in Backends.Cpu.Q8Gemm.HasVnni ? new[] { true, false } : [false])
        {
            string form = vnni ? "vpdpbusd" : "vpmaddubsw";
            Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w, bias, y, m, n, k, vnni);
            Assert.True(q8.AsSpan().SequenceEqual(y), $"q8_0 {form}: not the bits of the default form");
            Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w4, bias, y, m, n, k, vnni);
            Assert.True(q4.AsSpan().SequenceEqual(y), $"q4_0 {form}: not the bits of the default form");
        }
        if (Backends.Cpu.Q8Gemm.HasVnni) return;
        // without AVX-VNNI the vpdpbusd form refuses rather than fault
        Assert.Throws<PlatformNotSupportedException>(() =>
            Backends.Cpu.Q8Gemm.MatMulNT(qx, dx, w, bias, y, m, n, k, vnni: true));
        output.WriteLine("no AVX-VNNI on this CPU: only the vpmaddubsw form ran");
    }

    [Theory]
    [InlineData(WeightPrecision.Q8_0)]
    [InlineData(WeightPrecision.Q4_0)]
    public void The_dequantizing_prefill_gemm_multiplies_the_weights_values(WeightPrecision precision)
    {
        // What prefill runs where Q8Gemm does not pay (AVX-512 without AVX-VNNI, or no AVX2; this CPU may never pick
        // it): the weights widened a block of rows at a time into the float32 GEMM, against the plain triple loop on
        // the same values.
        const int m = 40, n = 77, k = 96;
        var rng = new Random(5);
        float[] x = Enumerable.Range(0, m * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] wf = Enumerable.Range(0, n * k).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        float[] bias = Enumerable.Range(0, n).Select(_ => (float)rng.NextDouble()).ToArray();
        float[] values = new float[n * k], y = new float[m * n], want = new float[m * n];
        if (precision == WeightPrecision.Q8_0)
        {
            var w = Backends.Cpu.Q8Weights.From(wf);
            for (int j = 0; j < n; j++) w.Dequantize(j, k, values.AsSpan(j * k, k));
            Backends.Cpu.Gemm.MatMulNT(x, w, y, m, n, k, bias);
            Assert.Equal(Loading.Q8_0.RoundTrip(wf), values);
        }
        else
        {
            var w = Backends.Cpu.Q4Weights.From(wf);
            for (int j = 0; j < n; j++) w.Dequantize(j, k, values.AsSpan(j * k, k));
            Backends.Cpu.Gemm.MatMulNT(x, w, y, m, n, k, bias);
            Assert.Equal(Loading.Q4_0.RoundTrip(wf), values);
        }
        Backends.Cpu.Gemm.MatMulNTReference(x, values, want, m, n, k, bias);
        for (int i = 0; i < want.Length; i++)
            Assert.True(Math.Abs(y[i] - want[i]) < 1e-4f, $"[{i}] {y[i]} vs {want[i]}");
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(9)]
    [InlineData(24)]
    [InlineData(96)]
    public void The_four_bit_dot_product_is_each_blocks_exact_sum_times_both_scales_less_the_offset(int blocks)
    {
        var rng = new Random(blocks);
        int n = blocks * Loading.Q4_0.BlockSize;
        byte[] codes = Enumerable.Range(0, n / 2).Select(_ => (byte)rng.Next(256)).ToArray();
        sbyte[] qx = Enumerable.Range(0, n).Select(_ => (sbyte)rng.Next(-127, 128)).ToArray();
        float[] dw = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble() / 100).ToArray();
        float[] dx = Enumerable.Range(0, blocks).Select(_ => (float)rng.NextDouble()).ToArray();
        float[] offsets = new float[blocks];
        Backends.Cpu.CpuKernels.Q4Offsets(qx, dx, offsets);
        double want = 0, magnitude = 0;
        for (int b = 0; b < blocks; b++)
        {
            long sum = 0, plain = 0;   // Σ (q − 8) · qx, and Σ q · qx as the kernel forms it
            for (int j = 0; j < 16; j++)
            {
                int lo = codes[b * 16 + j] & 0x0F, hi = codes[b * 16 + j] >> 4;
                sum += (lo - 8) * qx[b * 32 + j] + (hi - 8) * qx[b * 32 + 16 + j];
                plain += lo * qx[b * 32 + j] + hi * qx[b * 32 + 16 + j];
            }
            want += (double)dw[b] * dx[b] * sum;
            magnitude += Math.Abs((double)dw[b] * dx[b]) * (Math.Abs(plain) + Math.Abs(plain - sum));
        }
        float got = Backends.Cpu.CpuKernels.DotQ4(codes, dw, qx, dx, offsets);
        Assert.True(Math.Abs(got - want) <= 1e-6 * magnitude, $"{got} vs {want}");
        foreach (var (name, form) in DotQ4Forms())
        {
            float other = DotQ4With(form, codes, dw, qx, dx, offsets);
            Assert.True(Math.Abs(other - want) <= 1e-6 * magnitude, $"{name}: {other} vs {want}");
        }
    }

    private unsafe delegate float DotQ4Form(byte* codes, float* dw, sbyte* qx, float* dx, float* c, int blocks);

    private static unsafe List<(string, DotQ4Form)> DotQ4Forms()
    {
        var forms = new List<(string, DotQ4Form)> { ("scalar", Backends.Cpu.CpuKernels.DotQ4Scalar) };
        if (Avx2.IsSupported && Fma.IsSupported) forms.Add(("avx2", Backends.Cpu.CpuKernels.DotQ4Avx2));
        if (Avx512BW.IsSupported) forms.Add(("avx512", Backends.Cpu.CpuKernels.DotQ4Avx512));
        return forms;
    }

    private static unsafe float DotQ4With(DotQ4Form form, byte[] codes, float[] dw, sbyte[] qx, float[] dx, float[] c)
    {
        fixed (byte* w = codes)
        fixed (float* wd = dw, xd = dx, xc = c)
        fixed (sbyte* x = qx)
            return form(w, wd, x, xd, xc, dw.Length);
    }

    private unsafe delegate float DotQ8Form<TScale>(sbyte* qw, TScale* dw, sbyte* qx, float* dx, int blocks)
        where TScale : unmanaged;

    private static unsafe List<(string, DotQ8Form<float>, DotQ8Form<Half>)> DotQ8Forms()
    {
        var forms = new List<(string, DotQ8Form<float>, DotQ8Form<Half>)>
        {
            ("scalar", Backends.Cpu.CpuKernels.DotQ8Scalar, Backends.Cpu.CpuKernels.DotQ8Scalar),
        };
        if (Avx2.IsSupported && Fma.IsSupported)
            forms.Add(("avx2", Backends.Cpu.CpuKernels.DotQ8Avx2, Backends.Cpu.CpuKernels.DotQ8Avx2));
        if (Avx512BW.IsSupported)
            forms.Add(("avx512", Backends.Cpu.CpuKernels.DotQ8Avx512, Backends.Cpu.CpuKernels.DotQ8Avx512));
        return forms;
    }

    private static unsafe float DotQ8With<TScale>(DotQ8Form<TScale> form, sbyte[] qw, TScale[] dw, sbyte[] qx,
        float[] dx) where TScale : unmanaged
    {
        fixed (sbyte* w = qw)
        fixed (TScale* wd = dw)
        fixed (sbyte* x = qx)
        fixed (float* xd = dx)
            return form(w, wd, x, xd, dw.Length);
    }

    [Fact]
    public void Activations_quantize_to_within_half_a_step_and_round_trip_to_those_values()
    {
        var rng = new Random(7);
        float[] x = Enumerable.Range(0, 128).Select(_ => (float)(rng.NextDouble() * 8 - 4)).ToArray();
        Array.Clear(x, 64, 32);   // an all-zero block: d = 0, q = 0
        x[100] = 1e6f;            // one block dominated by a single value
        var q = new sbyte[128];
        var d = new float[4];
        Backends.Cpu.CpuKernels.QuantizeQ8(x, q, d);
        var back = new float[128];
        Backends.Cpu.CpuKernels.RoundTripQ8(x, back);
        Assert.Equal(0f, d[2]);
        for (int b = 0; b < 4; b++)
        {
            if (b != 2) Assert.Equal(127, q.Skip(b * 32).Take(32).Max(v => Math.Abs((int)v)));
            for (int i = b * 32; i < (b + 1) * 32; i++)
            {
                Assert.True(Math.Abs(x[i] - d[b] * q[i]) <= d[b] / 2 * 1.0001f, $"x[{i}] = {x[i]}, d {d[b]}, q {q[i]}");
                Assert.Equal(d[b] * q[i], back[i]);
            }
        }
    }

    [Theory]
    [InlineData(WeightPrecision.Q8_0)]
    [InlineData(WeightPrecision.Q4_0)]
    public void Prefill_and_decode_compute_the_same_quantized_model(WeightPrecision precision)
    {
        using var q8 = Load(precision);
        int[] ids = q8.Tokenizer!.Encode("ROMEO: But soft, what light through yonder window breaks? It is the east");
        Assert.True(ids.Length >= 16);   // the prompt goes through the GEMM, the steps through the dot products
        var prefill = q8.Forward(ids).Logits.AsSpan((ids.Length - 1) * q8.VocabSize, q8.VocabSize).ToArray();
        using var session = q8.CreateSession(ids.Length);
        var decode = new float[q8.VocabSize];
        foreach (int id in ids) session.Append([id], decode);
        float scale = prefill.Max(Math.Abs), worst = 0;
        for (int v = 0; v < decode.Length; v++) worst = Math.Max(worst, Math.Abs(decode[v] - prefill[v]));
        Assert.True(worst <= 1e-4f * scale, $"largest difference {worst} of logits up to {scale}");
        Assert.Equal(Array.IndexOf(prefill, prefill.Max()), Array.IndexOf(decode, decode.Max()));
    }
}
