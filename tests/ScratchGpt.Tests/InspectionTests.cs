using ScratchGpt.Decoding;
using ScratchGpt.Inspection;
using ScratchGpt.Loading;
using ScratchGpt.Model;
using ScratchGpt.Training;

namespace ScratchGpt.Tests;

/// <summary>The logit lens, head ablation and the activation cache against transformers' hidden states and
/// attentions (the fixtures) and against the plain float64 GPT-2 of <see cref="ReferenceGpt2"/>.</summary>
public class InspectionTests
{
    private static (Gpt2Model Model, int[] Ids, SafetensorsFile Expected) FixtureCase(string name)
    {
        var c = Fixtures.Json("forward.json")["cases"]!.AsArray().First(n => n!["name"]!.GetValue<string>() == name)!;
        var model = Fixtures.Load(c["model"]!.GetValue<string>());
        return (model, Fixtures.Ints(c["input_ids"]),
            SafetensorsFile.Open(Fixtures.Case(c["tensors_file"]!.GetValue<string>())));
    }

    private static Gpt2Parameters Parameters(string model) => Gpt2Parameters.Load(Fixtures.Model(model));

    [Fact]
    public void The_lens_last_row_is_the_models_prediction_and_its_first_rows_follow_from_the_hidden_states()
    {
        var (model, ids, expected) = FixtureCase("a_romeo");
        using var _ = expected;
        int L = model.Config.NLayer, T = ids.Length, V = model.VocabSize;
        var lens = LogitLens.Run(model, ids, top: 3);
        Assert.Equal(L + 1, lens.TopIds.Length);

        var logits = model.Forward(ids).Logits;
        var probs = new float[V];
        for (int t = 0; t < T; t++)
        {
            TokenMath.Softmax(logits.AsSpan(t * V, V), probs);
            var want = TokenMath.TopK(probs, 3);
            Assert.Equal(want.Select(w => w.Index), lens.TopIds[L][t]);
            for (int k = 0; k < 3; k++) Assert.Equal(want[k].Value, lens.TopProbs[L][t][k], 1e-4);
            Assert.Equal(lens.TopProbs[L][t][0], lens.FinalTokenProbs[L][t], 1e-6);
        }

        // Rows 0 .. L−1 from transformers' hidden_states.{l} (the embeddings and each block's output), in float64.
        var p = Parameters("tiny-gpt2");
        for (int l = 0; l < L; l++)
        {
            float[] h = expected.ReadFloat32($"hidden_states.{l}");
            for (int t = 0; t < T; t++)
            {
                double[] row = DirectLens(p, h.AsSpan(t * model.Config.NEmbd, model.Config.NEmbd));
                int best = Array.IndexOf(row, row.Max());
                Assert.Equal(best, lens.TopIds[l][t][0]);
                Assert.Equal(row[best], lens.TopProbs[l][t][0], 1e-4);
            }
        }
    }

    /// <summary>softmax(ln_f(x) · wteᵀ) for one residual row, in float64.</summary>
    private static double[] DirectLens(Gpt2Parameters p, ReadOnlySpan<float> x)
    {
        int E = p.Config.NEmbd, V = p.Config.VocabSize;
        double mean = 0, var = 0;
        foreach (float v in x) mean += v;
        mean /= E;
        foreach (float v in x) var += (v - mean) * (v - mean);
        double rstd = 1 / Math.Sqrt(var / E + p.Config.LayerNormEpsilon);
        var f = new double[E];
        for (int i = 0; i < E; i++)
            f[i] = (x[i] - mean) * rstd * p.Values[p.LnFWeight.Offset + i] + p.Values[p.LnFBias.Offset + i];
        var logits = new double[V];
        for (int o = 0; o < V; o++)
            for (int i = 0; i < E; i++) logits[o] += f[i] * p.Values[p.Wte.Offset + o * E + i];
        double max = logits.Max(), sum = logits.Sum(z => Math.Exp(z - max));
        return logits.Select(z => Math.Exp(z - max) / sum).ToArray();
    }

    [Fact]
    public void The_cache_holds_transformers_states_and_the_float64_references_activations()
    {
        var (model, ids, expected) = FixtureCase("a_fox");
        using var _ = expected;
        var c = model.Config;
        var cache = ActivationCache.Run(model, ids);
        Assert.Equal(ForwardHooks.Names(c).ToHashSet(), cache.Keys.ToHashSet());
        int T = ids.Length;
        Assert.Equal([1, T, c.NHead, c.HeadDim], cache["blocks.0.attn.hook_q"].Shape);
        Assert.Equal([1, c.NHead, T, T], cache["blocks.1.attn.hook_pattern"].Shape);
        Assert.Equal([1, T, c.MlpWidth], cache["blocks.1.mlp.hook_post"].Shape);

        // Where transformers gave the same tensor: hidden_states and attentions.
        Assert.True(
            Fixtures.MaxAbsDiff(expected.ReadFloat32("hidden_states.0"),
            cache["blocks.0.hook_resid_pre"].Values) <= 1e-5f);
        for (int l = 0; l < c.NLayer - 1; l++)
            Assert.True(
                Fixtures.MaxAbsDiff(expected.ReadFloat32($"hidden_states.{l + 1}"),
                cache[$"blocks.{l}.hook_resid_post"].Values) <= 1e-4f, $"resid_post {l}");
        for (int l = 0; l < c.NLayer; l++)
            Assert.True(
                Fixtures.MaxAbsDiff(expected.ReadFloat32($"attentions.{l}"),
                cache[$"blocks.{l}.attn.hook_pattern"].Values) <= 1e-5f, $"pattern {l}");

        // Everything against the float64 reference.
        var reference = ReferenceGpt2.Activations(Parameters("tiny-gpt2"), ids);
        foreach (var (name, a) in cache)
        {
            var want = reference[name];
            Assert.Equal(want.Length, a.Values.Length);
            for (int i = 0; i < want.Length; i++)
            {
                if (double.IsNegativeInfinity(want[i]))
                {
                    Assert.True(float.IsNegativeInfinity(a.Values[i]), $"{name}[{i}] masked");
                    continue;
                }
                Assert.True(Math.Abs(want[i] - a.Values[i]) <= 2e-4 * Math.Max(1, Math.Abs(want[i])),
                    $"{name}[{i}]: {a.Values[i]} vs {want[i]}");
            }
        }
    }

    [Fact]
    public void Ablating_no_head_is_the_baseline_and_one_head_matches_an_independent_recomputation()
    {
        var (model, ids, expected) = FixtureCase("a_romeo");
        expected.Dispose();
        var c = model.Config;
        int target = model.Tokenizer!.Encode(" the")[0];
        var r = HeadAblation.Run(model, ids, target);

        // The baseline is the model's own log-probability.
        var logp = new float[model.VocabSize];
        TokenMath.LogSoftmax(model.Forward(ids, new ForwardOptions { AllLogits = false }).Row(0), logp);
        Assert.Equal(logp[target], r.BaselineLogProb, 1e-4);
        // A hook that changes nothing changes nothing.
        var untouched = model.Forward(ids,
            new ForwardOptions { Hooks = new ForwardHooks().On("blocks.1.attn.hook_z", _ => { }), AllLogits = false });
        TokenMath.LogSoftmax(untouched.Row(0), logp);
        Assert.Equal(r.BaselineLogProb, logp[target], 1e-9);

        var p = Parameters("tiny-gpt2");
        double Reference((int, int)? head)
        {
            var logits = ReferenceGpt2.Activations(p, ids, head)["logits"].AsSpan((ids.Length - 1) * c.VocabSize,
                c.VocabSize).ToArray();
            double max = logits.Max();
            return logits[target] - max - Math.Log(logits.Sum(z => Math.Exp(z - max)));
        }
        double baseline = Reference(null);
        foreach (var (l, h) in new[] { (0, 0), (1, 2), (c.NLayer - 1, c.NHead - 1) })
            Assert.Equal(Reference((l, h)) - baseline, r.DeltaLogProb[l][h], 2e-4);
        Assert.Contains(r.DeltaLogProb.SelectMany(x => x), d => Math.Abs(d) > 1e-3);   // some head matters
    }

    [Fact]
    public void Mean_ablation_replaces_a_head_by_its_average_over_positions()
    {
        float[] z = [1, 2, 10, 20, 3, 4, 30, 40];   // T = 2, H = 2, D = 2
        HeadAblation.Ablate(z, T: 2, h: 1, D: 2, E: 4, mean: true);
        Assert.Equal([1, 2, 20, 30, 3, 4, 20, 30], z);
        HeadAblation.Ablate(z, T: 2, h: 0, D: 2, E: 4, mean: false);
        Assert.Equal([0, 0, 20, 30, 0, 0, 20, 30], z);
    }

    [Fact]
    public void A_probe_fills_the_template_and_scores_multi_token_targets()
    {
        var model = Fixtures.Load("tiny-gpt2");
        Assert.Equal("The man works as a", PromptProbe.Fill("The {} works as a", "man"));
        Assert.Throws<ArgumentException>(() => PromptProbe.Fill("The {} and {}", "x"));
        int[] ids = model.Tokenizer!.Encode("ROMEO: I will");
        int[] target = model.Tokenizer.Encode(" go to");
        var row = PromptProbe.Probe(model, "x", "ROMEO: I will", ids, 5, [(" go to", target)], null);
        Assert.Equal(5, row.Top.Length);
        var r = model.Forward([.. ids, .. target]);
        var logp = new float[model.VocabSize];
        double want = 0;
        for (int i = 0; i < target.Length; i++)
        {
            TokenMath.LogSoftmax(r.Row(ids.Length - 1 + i), logp);
            want += logp[target[i]];
        }
        Assert.Equal(Math.Exp(want), row.Targets[0].Prob, 1e-6);
    }
}
