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
        using var q8 = Load(WeightPrecision.Q8_0);
        Assert.Equal(WeightPrecision.Q8_0, q8.Precision);
        int cases = 0, identical = 0, tokens = 0, same = 0;
        foreach (var c in Fixtures.Json("generation.json")["cases"]!.AsArray())
        {
            var kwargs = c!["generate_kwargs"]!;
            if (kwargs["do_sample"]?.GetValue<bool>() == true) continue;
            int[] prompt = Fixtures.Ints(c["input_ids"]);
            int[] want = Fixtures.Ints(c["sequences"]![0]);
            int[] got = new Generator(q8).Generate(prompt, GenerationTests.ConfigFrom(kwargs)).Sequences[0].Ids;
            cases++;
            if (got.SequenceEqual(want)) identical++;
            // Tokens up to the first difference: after it the two continuations are different texts.
            int n = prompt.Length;
            while (n < Math.Min(want.Length, got.Length) && want[n] == got[n]) n++;
            tokens += want.Length - prompt.Length;
            same += n - prompt.Length;
        }
        output.WriteLine($"q8_0: {identical} of {cases} deterministic fixture generations identical; {same} of " +
            $"{tokens} new tokens before the first difference");
        Assert.True(cases >= 20);
        Assert.True(identical >= cases * 3 / 4, $"only {identical} of {cases} generations survive Q8_0");
    }

    [Fact]
    public void Q8_0_moves_the_held_out_perplexity_by_under_one_percent()
    {
        string text = File.ReadAllText(Path.Combine(Fixtures.Dir, "..", "corpus", "tinyshakespeare.txt"));
        using var f32 = Load(WeightPrecision.Float32);
        using var q8 = Load(WeightPrecision.Q8_0);
        int[] ids = f32.Tokenizer!.Encode(text[(int)(text.Length * 0.9)..])[..4096];
        double Perplexity(Gpt2Model m)
        {
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
        double a = Perplexity(f32), b = Perplexity(q8);
        output.WriteLine($"held-out perplexity (4096 tokens): float32 {a:F4}, q8_0 {b:F4} " +
            $"({100 * (b / a - 1):+0.000;-0.000}%)");
        Assert.True(Math.Abs(b / a - 1) < 0.01, $"float32 {a}, q8_0 {b}");
        Assert.NotEqual(a, b);   // the weights really were quantized
    }

    [Fact]
    public void A_q8_0_checkpoint_loads_as_the_same_model_as_quantizing_at_load()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-q8").FullName;
        try
        {
            var p = Training.Gpt2Parameters.Load(Fixtures.Model("tiny-gpt2"));
            p.SaveSafetensors(Path.Combine(dir, "model.safetensors"), "q8_0");
            File.WriteAllText(Path.Combine(dir, "config.json"), p.Config.ToJson("q8_0"));
            Assert.Contains("\"quant_method\": \"q8_0\"", File.ReadAllText(Path.Combine(dir, "config.json")));
            using (var f = Loading.SafetensorsFile.Open(Path.Combine(dir, "model.safetensors")))
            {
                Assert.Equal(Loading.SafetensorsDType.I8, f.Tensors["transformer.h.0.mlp.c_fc.weight"].DType);
                Assert.Equal([256L, 64], f.Tensors["transformer.h.0.mlp.c_fc.weight"].Shape);         // [out, in]
                Assert.Equal([256L, 2], f.Tensors["transformer.h.0.mlp.c_fc.weight_scale"].Shape);
                Assert.Equal(Loading.SafetensorsDType.F32, f.Tensors["transformer.h.0.mlp.c_fc.bias"].DType);
            }
            long f32Bytes = new FileInfo(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors")).Length;
            Assert.True(new FileInfo(Path.Combine(dir, "model.safetensors")).Length < f32Bytes * 0.3);

            using var stored = Gpt2Model.Load(dir,
                new ModelLoadOptions { Device = "cpu", TokenizerDirectory = Fixtures.TokenizerDir });
            using var atLoad = Load(WeightPrecision.Q8_0);
            Assert.Equal(WeightPrecision.Q8_0, stored.Precision);
            Assert.Equal("Q8_0", stored.CheckpointDType);
            int[] ids = stored.Tokenizer!.Encode("ROMEO: But soft, what light through yonder window breaks?");
            Assert.Equal(atLoad.Forward(ids).Logits, stored.Forward(ids).Logits);
        }
        finally { Directory.Delete(dir, true); }
    }
}
