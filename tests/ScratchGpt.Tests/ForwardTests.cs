using ScratchGpt.Loading;
using ScratchGpt.Model;

namespace ScratchGpt.Tests;

/// <summary>Logits, attentions and hidden states against transformers' output_attentions /
/// output_hidden_states.</summary>
public class ForwardTests
{
    public static TheoryData<string, string> Cases()
    {
        var data = new TheoryData<string, string>();
        foreach (var c in Fixtures.Json("forward.json")["cases"]!.AsArray())
        {
            string name = c!["name"]!.GetValue<string>(), model = c["model"]!.GetValue<string>();
            data.Add(name, model);
            if (model == "tiny-gpt2") data.Add(name, "tiny-gpt2-hub");   // same weights, Hub key layout
        }
        return data;
    }

    [Theory, MemberData(nameof(Cases))]
    public void Forward_matches_transformers(string caseName, string modelName) =>
        CheckForward(caseName, modelName, "cpu");

    internal static void CheckForward(string caseName, string modelName, string device)
    {
        var c = Fixtures.Json("forward.json")["cases"]!.AsArray()
            .First(n => n!["name"]!.GetValue<string>() == caseName)!;
        var model = Fixtures.Load(modelName, device);
        int[] ids = Fixtures.Ints(c["input_ids"]);
        Assert.Equal(ids, model.Tokenizer!.Encode(c["prompt"]!.GetValue<string>()));

        var result = model.Forward(ids, new ForwardOptions { Attentions = true, HiddenStates = true });
        using var expected = SafetensorsFile.Open(Fixtures.Case(c["tensors_file"]!.GetValue<string>()));
        Assert.Equal(expected.ReadInt64("input_ids").Select(x => (int)x), ids);

        Assert.True(Fixtures.MaxAbsDiff(expected.ReadFloat32("logits"), result.Logits) <= 1e-4f, "logits");
        int L = model.Config.NLayer;
        Assert.Equal(L + 1, result.HiddenStates!.Length);
        for (int i = 0; i <= L; i++)
            Assert.True(
                Fixtures.MaxAbsDiff(expected.ReadFloat32($"hidden_states.{i}"), result.HiddenStates[i]) <= 1e-4f,
                $"hidden_states.{i}");
        Assert.Equal(L, result.Attentions!.Length);
        for (int i = 0; i < L; i++)
            Assert.True(Fixtures.MaxAbsDiff(expected.ReadFloat32($"attentions.{i}"), result.Attentions[i]) <= 1e-5f,
                $"attentions.{i}");

        // The top-5 of the last position, with the probabilities transformers printed.
        var last = result.Row(ids.Length - 1).ToArray();
        var probs = new float[last.Length];
        Decoding.TokenMath.Softmax(last, probs);
        var top5 = Decoding.TokenMath.TopK(probs, 5);
        var want = c["last_position_top5"]!.AsArray();
        for (int k = 0; k < 5; k++)
        {
            Assert.Equal(want[k]!["id"]!.GetValue<int>(), top5[k].Index);
            Assert.Equal(want[k]!["prob"]!.GetValue<float>(), top5[k].Value, 1e-5f);
        }
    }

    [Fact]
    public void Cached_decoding_gives_the_same_logits_as_a_full_pass()
    {
        var model = Fixtures.Load("tiny-gpt2");
        // Long enough (> 16 tokens) that the full pass takes the blocked-GEMM prefill path and the cached steps the
        // matvec path.
        int[] ids = model.Tokenizer!.Encode("ROMEO:\nBut soft, what light through yonder window breaks? It is the " +
            "east, and Juliet is the sun.");
        Assert.True(ids.Length > 20);
        var full = model.Forward(ids);
        using var session = model.CreateSession();
        var logits = new float[model.VocabSize];
        session.Append(ids.AsSpan(0, 3), logits);
        Assert.True(Fixtures.MaxAbsDiff(full.Row(2), logits) <= 1e-5f);
        for (int t = 3; t < ids.Length; t++)
        {
            session.Append(ids.AsSpan(t, 1), logits);
            Assert.True(Fixtures.MaxAbsDiff(full.Row(t), logits) <= 1e-5f, $"position {t}");
        }
        Assert.Equal(ids.Length, session.Length);
    }

    [Fact]
    public void A_copied_session_continues_like_the_original_even_at_another_capacity()
    {
        // The KV cache is head-major [n_head, capacity, head_dim]: a copy into a session of another capacity must
        // move each head's block to that head's place, or the copy attends to the wrong keys.
        var model = Fixtures.Load("tiny-gpt2");
        int[] ids = model.Tokenizer!.Encode("ROMEO:\nBut soft, what light through yonder window breaks?");
        using var original = model.CreateSession(40);
        using var copy = model.CreateSession(64);
        var expected = new float[model.VocabSize];
        var actual = new float[model.VocabSize];
        original.Append(ids.AsSpan(0, ids.Length - 1), expected);
        copy.CopyFrom(original);
        Assert.Equal(original.Length, copy.Length);
        original.Append(ids.AsSpan(ids.Length - 1), expected);
        copy.Append(ids.AsSpan(ids.Length - 1), actual);
        Assert.Equal(expected, actual);
        using var small = model.CreateSession(ids.Length - 2);
        Assert.Throws<ArgumentException>(() => small.CopyFrom(original));
    }

    [Fact]
    public void Float16_checkpoint_is_read_and_matches_float32_closely()
    {
        // Write the float32 fixture as float16 and compare against the float32 model on the same weights.
        string dir = Directory.CreateTempSubdirectory("sgpt-f16").FullName;
        try
        {
            using (var src = SafetensorsFile.Open(Path.Combine(Fixtures.Model("tiny-gpt2"), "model.safetensors")))
            {
                var w = new SafetensorsWriter();
                foreach (var t in src.Tensors.Values) w.AddFloat16(t.Name, t.Shape, src.ReadFloat32(t.Name));
                w.Save(Path.Combine(dir, "model.safetensors"));
            }
            File.Copy(Path.Combine(Fixtures.Model("tiny-gpt2"), "config.json"), Path.Combine(dir, "config.json"));
            using var f16 = Gpt2Model.Load(dir, new ModelLoadOptions { TokenizerDirectory = Fixtures.TokenizerDir });
            Assert.Equal("F16", f16.CheckpointDType);
            Assert.Equal(Backends.WeightPrecision.Float16, f16.Precision);
            int[] ids = f16.Tokenizer!.Encode("The quick brown fox jumped over");
            var a = f16.Forward(ids).Logits;
            var b = Fixtures.Load("tiny-gpt2").Forward(ids).Logits;
            float diff = Fixtures.MaxAbsDiff(a, b);
            Assert.True(diff < 0.05f && diff > 0f, $"float16 vs float32 max diff {diff}");

            // Exactness of the 16-bit path: float16 kept in memory = the same weights widened to float32.
            using var widened = Gpt2Model.Load(dir,
                new ModelLoadOptions { TokenizerDirectory = Fixtures.TokenizerDir,
                Precision = Backends.WeightPrecision.Float32 });
            Assert.True(Fixtures.MaxAbsDiff(widened.Forward(ids).Logits, a) <= 1e-4f);
        }
        finally { Directory.Delete(dir, true); }
    }
}
