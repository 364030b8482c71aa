using System.Diagnostics;
using System.Text.Json.Nodes;
using ScratchGpt.Loading;
using ScratchGpt.Tokenization;

namespace ScratchGpt.Tests;

/// <summary>
/// The GGUF export read back by an independent parser: Hugging Face's @huggingface/gguf (npm, run under Node.js),
/// which gives the key-values, the tensor infos and where the data starts; every tensor's bytes are then read at
/// the offsets it reports and compared with the checkpoint. .ci/run installs the package (SCRATCHGPT_GGUF_JS).
/// </summary>
public class GgufTests
{
    private static string ModuleDir =>
        Environment.GetEnvironmentVariable("SCRATCHGPT_GGUF_JS") is { } d
            && File.Exists(Path.Combine(d, "node_modules/@huggingface/gguf/package.json"))
            ? d
            : throw new InvalidOperationException("@huggingface/gguf not found: .ci/run installs it with npm into a " +
            "temporary folder (its path in SCRATCHGPT_GGUF_JS)");

    /// <summary>The parser's view of a file: {metadata, tensorInfos: [{name, shape, dtype, offset}],
    /// tensorDataOffset}.</summary>
    private static JsonNode Parse(string gguf)
    {
        string script = Path.Combine(Path.GetDirectoryName(gguf)!, "read.mjs");
        string module = new Uri(Path.Combine(ModuleDir, "node_modules/@huggingface/gguf/dist/index.mjs")).AbsoluteUri;
        File.WriteAllText(script, $$"""
            import { gguf } from "{{module}}";
            const r = await gguf(process.argv[2], { allowLocalFile: true });
            const out = { metadata: r.metadata, tensorDataOffset: r.tensorDataOffset,
              tensorInfos: r.tensorInfos.map(t =>
                ({ name: t.name, shape: t.shape, dtype: t.dtype, offset: t.offset })) };
            process.stdout.write(JSON.stringify(out, (k, v) => typeof v === "bigint" ? Number(v) : v));
            """);
        var psi = new ProcessStartInfo("node", [script, gguf])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        string stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.True(p.ExitCode == 0, stderr);
        return JsonNode.Parse(stdout.Result)!;
    }

    [Theory]
    [InlineData("f32")]
    [InlineData("f16")]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    public void An_exported_gguf_reads_back_key_by_key_and_tensor_by_tensor(string dtype)
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-gguf").FullName;
        try
        {
            string model = Fixtures.Model("tiny-gpt2"), path = Path.Combine(dir, "tiny.gguf");
            var config = ModelFolder.LoadConfig(model);
            var tok = Gpt2Tokenizer.Load(Fixtures.TokenizerDir);
            using var file = ModelFolder.OpenWeights(model);
            var ckpt = new Gpt2Checkpoint(file, config);
            Gpt2Gguf.Write(ckpt, tok.ToGguf(config.VocabSize), dtype, "tiny-gpt2", path);
            var r = Parse(path);

            var m = r["metadata"]!;
            Assert.Equal(3, m["version"]!.GetValue<int>());
            Assert.Equal("gpt2", m["general.architecture"]!.GetValue<string>());
            Assert.Equal("tiny-gpt2", m["general.name"]!.GetValue<string>());
            Assert.Equal(dtype switch { "f32" => 0, "f16" => 1, "q8_0" => 7, _ => 2 },
                m["general.file_type"]!.GetValue<int>());
            Assert.Equal(config.NPositions, m["gpt2.context_length"]!.GetValue<int>());
            Assert.Equal(config.NEmbd, m["gpt2.embedding_length"]!.GetValue<int>());
            Assert.Equal(4 * config.NEmbd, m["gpt2.feed_forward_length"]!.GetValue<int>());
            Assert.Equal(config.NLayer, m["gpt2.block_count"]!.GetValue<int>());
            Assert.Equal(config.NHead, m["gpt2.attention.head_count"]!.GetValue<int>());
            Assert.Equal(config.LayerNormEpsilon, m["gpt2.attention.layer_norm_epsilon"]!.GetValue<float>());
            Assert.Equal("gpt2", m["tokenizer.ggml.model"]!.GetValue<string>());
            Assert.Equal("gpt-2", m["tokenizer.ggml.pre"]!.GetValue<string>());
            var tokens = m["tokenizer.ggml.tokens"]!.AsArray();
            Assert.Equal(config.VocabSize, tokens.Count);
            for (int id = 0; id < config.VocabSize; id += 997)
                Assert.Equal(tok.IdToToken(id), tokens[id]!.GetValue<string>());
            Assert.Equal("Hello", tokens[15496]!.GetValue<string>());
            var types = m["tokenizer.ggml.token_type"]!.AsArray();
            Assert.Equal(3, types[50256]!.GetValue<int>());
            Assert.Equal(1, types[15496]!.GetValue<int>());
            var merges = File.ReadLines(Path.Combine(Fixtures.TokenizerDir, "merges.txt")).Skip(1)
                .Where(l => l.Length > 0).ToList();
            Assert.Equal(merges, m["tokenizer.ggml.merges"]!.AsArray().Select(x => x!.GetValue<string>()));
            Assert.Equal(50256, m["tokenizer.ggml.bos_token_id"]!.GetValue<int>());
            Assert.Equal(50256, m["tokenizer.ggml.eos_token_id"]!.GetValue<int>());

            var infos = r["tensorInfos"]!.AsArray().ToDictionary(t => t!["name"]!.GetValue<string>());
            var layout = Gpt2Layout.For(config).All().ToList();
            Assert.Equal(layout.Count + 1, infos.Count);                                          // + output.weight
            byte[] bytes = File.ReadAllBytes(path);
            long dataStart = r["tensorDataOffset"]!.GetValue<long>();
            foreach (var spec in layout.Append(layout[0] with { Name = "output.weight" }))
            {
                string name = spec.Name == "output.weight" ? "output.weight" : Gpt2Gguf.TensorName(spec.Name);
                var info = infos[name]!;
                Assert.Equal(spec.Shape.Reverse(), info["shape"]!.AsArray().Select(d => d!.GetValue<int>()));
                int type = info["dtype"]!.GetValue<int>();
                bool quantized = dtype is "q8_0" or "q4_0";
                int wantType = spec.Shape.Length == 1 || (spec.Name == "wpe.weight" && quantized) ? 0
                    : dtype switch { "f16" => 1, "q8_0" => 8, "q4_0" => 2, _ => 0 };
                Assert.Equal(wantType, type);
                long offset = info["offset"]!.GetValue<long>();
                Assert.Equal(0, offset % 32);
                float[] want = ckpt.Read(spec with { Name = spec.Name == "output.weight" ? "wte.weight" : spec.Name });
                byte[] expected = Gpt2Gguf.Encode(want, (GgufWriter.TensorType)type);
                Assert.True(bytes.AsSpan((int)(dataStart + offset), expected.Length).SequenceEqual(expected),
                    $"{name} bytes");
                if (type == 8)
                {
                    float[] back = Q8_0.Dequantize(expected);
                    for (int i = 0; i < want.Length; i++)
                    {
                        float amax = want.AsSpan(i / 32 * 32, 32).ToArray().Max(Math.Abs);
                        Assert.True(Math.Abs(back[i] - want[i]) <= amax / 127 * 0.5 + amax * 1e-3, $"{name}[{i}]");
                    }
                }
                if (type == 2)
                {
                    // half a step of amax / 8 inside the grid; the top code (7d) clips values up to 8d: one step
                    float[] back = Q4_0.Dequantize(expected);
                    for (int i = 0; i < want.Length; i++)
                    {
                        float amax = want.AsSpan(i / 32 * 32, 32).ToArray().Max(Math.Abs);
                        Assert.True(Math.Abs(back[i] - want[i]) <= amax / 8 + amax * 1e-3, $"{name}[{i}]");
                    }
                }
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Q8_0_rounds_half_away_from_zero_with_one_scale_per_block()
    {
        var x = new float[64];
        for (int i = 0; i < 32; i++) x[i] = i - 16;          // amax 16: d = 16/127
        x[40] = 127f; x[41] = 2.5f; x[42] = -2.5f;            // block 2: d = 1 exactly; ±2.5 rounds away from zero
        var q = Q8_0.Quantize(x);
        Assert.Equal(2 * Q8_0.BlockBytes, q.Length);
        Assert.Equal((Half)(16f / 127), BitConverter.ToHalf(q, 0));
        Assert.Equal(-127, (sbyte)q[2]);                       // −16
        Assert.Equal(119, (sbyte)q[2 + 31]);                   // 15 · 127/16 = 119.06
        Assert.Equal((Half)1f, BitConverter.ToHalf(q, Q8_0.BlockBytes));
        Assert.Equal([127, 3, -3], q.AsSpan(Q8_0.BlockBytes + 2 + 8, 3).ToArray().Select(b => (int)(sbyte)b));
        Assert.Throws<ArgumentException>(() => Q8_0.Quantize(new float[33]));
    }

    [Fact]
    public void Q4_0_maps_the_largest_magnitude_to_code_0_and_packs_values_j_and_j_plus_16_in_one_byte()
    {
        var x = new float[32];
        for (int i = 1; i < 32; i++) x[i] = i - 12;          // −11 … 19
        x[0] = -19;                                            // ties 19 and comes first: m = −19, d = −19 / −8
        var q = Q4_0.Quantize(x);
        Assert.Equal(Q4_0.BlockBytes, q.Length);
        Assert.Equal((Half)2.375f, BitConverter.ToHalf(q, 0));
        int Code(int i) => i < 16 ? q[2 + i] & 0x0F : q[2 + i - 16] >> 4;
        Assert.Equal(0, Code(0));                              // −19 = −8 · d
        Assert.Equal(15, Code(31));                            // 19 = 8 · d, clipped to the top code (7d)
        Assert.Equal(8, Code(12));                             // 0: ⌊0 + 8.5⌋
        Assert.Equal(3, Code(1));                              // −11: ⌊−4.63 + 8.5⌋
        Assert.Equal(10, Code(17));                            // 5: ⌊2.11 + 8.5⌋
        Assert.Equal(Code(1) | Code(17) << 4, q[2 + 1]);       // values 1 and 17 share byte 1
        Assert.Equal(-11.875f, Q4_0.Dequantize(q)[1]);         // 2.375 · (3 − 8)
        Assert.Throws<ArgumentException>(() => Q4_0.Quantize(new float[33]));
    }
}
