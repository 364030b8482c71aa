using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>
/// The scratchgpt command as users run it: a real process with redirected streams, its exit code, stdout and
/// stderr, and real signals for Ctrl-C. (CliTests runs the same entry point in-process, for speed.)
/// </summary>
[Collection("cli-process")]
public class CliProcessTests(CliProcessTests.RandomGpt2 gpt2) : IClassFixture<CliProcessTests.RandomGpt2>
{
    /// <summary>A randomly initialised GPT-2 (124M, float16) written by `scratchgpt init`: slow enough on the CPU
    /// that a signal reliably lands in the middle of a generation.</summary>
    public sealed class RandomGpt2 : IDisposable
    {
        public string Dir { get; } = Directory.CreateTempSubdirectory("sgpt-gpt2").FullName;

        public RandomGpt2()
        {
            var (code, _, err) = CliProcess.Run("init", "--config", "gpt2", "--out", Dir, "--dtype", "f16");
            if (code != 0) throw new InvalidOperationException("init failed: " + err);
        }

        public void Dispose() => Directory.Delete(Dir, true);
    }

    private static string Tiny => Fixtures.Model("tiny-gpt2");

    private static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries);

    [Fact]
    public void A_plain_generate_prints_only_the_text()
    {
        var (code, stdout, stderr) = CliProcess.Run("generate", "--prompt", "hi", "--max-new-tokens", "5");
        Assert.True(code == 0, stderr);
        Assert.Equal("", stderr);   // no device selection noise, no notes
        Assert.StartsWith("hi", stdout);
    }

    [Fact]
    public void Every_command_survives_markup_characters_in_names_and_text()
    {
        // A model folder and a prompt full of Spectre markup: each must be printed as text, never parsed.
        string dir = Path.Combine(Directory.CreateTempSubdirectory("sgpt-markup").FullName,
            "model [red]x[/] [50257, 64]");
        Directory.CreateDirectory(dir);
        try
        {
            foreach (var f in Directory.GetFiles(Tiny)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            const string prompt = "[red] ROMEO: [bold]x[/] ][";
            string[][] commands =
            [
                ["summary"],
                ["predict", "--prompt", prompt],
                ["attention", "--prompt", prompt, "--layer", "1", "--head", "2"],
                ["attention", "--prompt", prompt, "--layer", "all", "--head", "all"],
                ["steps", "--prompt", prompt, "--steps", "2"],
                ["generate", "--prompt", prompt, "--max-new-tokens", "3", "--num-return-sequences", "2", "--do-sample",
                    "--seed", "1"],
                ["generate", "--prompt", prompt, "--max-new-tokens", "3", "--trace", "3", "--do-sample", "--seed", "1"],
                ["compare", "--prompt", prompt, "--max-new-tokens", "3"],
                ["score", "--prompt", prompt, "--continuation", " [/red]"],
                ["tokenize", "--text", prompt],
            ];
            foreach (var args in commands)
            {
                string[] device = args[0] == "tokenize" ? [] : ["--device", "cpu"];
                var (code, stdout, stderr) = CliProcess.Run([.. args, "--model", dir, .. device], null);
                Assert.True(code == 0, $"{args[0]}: exit {code}: {stderr}");
                Assert.DoesNotContain("error", stderr);
                Assert.NotEqual("", stdout);
            }
            var summary = CliProcess.Run("summary", "--model", dir, "--device", "cpu").Out;
            Assert.Contains("wte  [50257, 64]", summary);
            Assert.Contains("[red]x[/]", summary);
        }
        finally { Directory.Delete(Path.GetDirectoryName(dir)!, true); }
    }

    [Theory]
    [InlineData("summary")]
    [InlineData("predict", "--prompt", "ROMEO:")]
    [InlineData("attention", "--prompt", "ROMEO: hi", "--layer", "0", "--head", "1")]
    [InlineData("attention", "--prompt", "ROMEO: hi", "--layer", "all", "--head", "all")]
    [InlineData("compare", "--prompt", "ROMEO:", "--max-new-tokens", "3")]
    [InlineData("steps", "--prompt", "ROMEO:", "--steps", "2")]
    [InlineData("generate", "--prompt", "ROMEO:", "--max-new-tokens", "3")]
    [InlineData("generate", "--prompt", "A", "--prompt", "B C", "--max-new-tokens", "3")]
    [InlineData("score", "--prompt", "ROMEO:", "--continuation", " I")]
    [InlineData("tokenize", "--text", "ROMEO:")]
    public void Json_output_is_one_json_document_on_stdout(params string[] args)
    {
        string[] device = args[0] == "tokenize" ? [] : ["--device", "cpu"];
        var (code, stdout, stderr) = CliProcess.Run([.. args, "--model", Tiny, .. device, "--json"], null);
        Assert.True(code == 0, stderr);
        Assert.IsType<JsonObject>(JsonNode.Parse(stdout));
    }

    [Fact]
    public void Bench_runs_as_users_run_it_and_measures_the_bandwidth_floor()
    {
        var (code, stdout, stderr) = CliProcess.Run("bench", "--model", Tiny, "--device", "cpu", "--prompt-tokens",
            "8", "--new-tokens", "4", "--runs", "1", "--quantize", "q8_0");
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain("error", stderr);
        Assert.DoesNotContain('\r', stderr);   // no progress line redrawn into a file or a pipe
        Assert.DoesNotContain('\u001b', stdout);
        string Field(string name) =>
            Lines(stdout).Single(l => l.StartsWith(name + " ")).Split(' ', StringSplitOptions.RemoveEmptyEntries)[1];
        Assert.Equal("Q8_0", Field("dtype"));
        Assert.True(double.Parse(Field("bandwidth_gb_s"), System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.True(double.Parse(Field("floor_ms_per_token"), System.Globalization.CultureInfo.InvariantCulture) > 0);
        Assert.True(long.Parse(Field("kv_cache_bytes_per_token")) > 0);   // the floor counts the cache a step reads

        // --json: one object, the device line as written (the instructions its kernels use, "+" not "\u002B")
        (code, stdout, stderr) = CliProcess.Run("bench", "--model", Tiny, "--device", "cpu", "--prompt-tokens", "8",
            "--new-tokens", "4", "--runs", "1", "--json");
        Assert.True(code == 0, stderr);
        Assert.Contains("\"device_name\":\"", stdout);
        Assert.DoesNotContain("\\u00", stdout);
        Assert.StartsWith($"{Environment.ProcessorCount} cores, ",
            JsonNode.Parse(stdout)!["device_name"]!.GetValue<string>());
    }

    [Fact]
    public void Generate_json_has_one_shape_for_one_prompt_and_for_several()
    {
        foreach (var prompts in new[] { new[] { "--prompt", "Transformers are the" },
            ["--prompt", "Transformers are the", "--prompt", "Hi"] })
        {
            var (code, stdout, stderr) = CliProcess.Run(
                ["generate", "--model", Tiny, "--device", "cpu", .. prompts, "--max-new-tokens", "4", "--json"], null);
            Assert.True(code == 0, stderr);
            var j = JsonNode.Parse(stdout)!;
            Assert.Equal(prompts.Length / 2, j["prompts"]!.AsArray().Count);
            var first = j["prompts"]![0]!;
            var row = first["sequences"]![0]!;
            int[] promptIds = Fixtures.Ints(first["prompt_ids"]), ids = Fixtures.Ints(row["ids"]),
                newIds = Fixtures.Ints(row["new_ids"]);
            Assert.Equal([.. promptIds, .. newIds], ids);   // ids = prompt + new
            Assert.Equal(first["prompt"]!.GetValue<string>() + row["new_text"]!.GetValue<string>(),
                row["text"]!.GetValue<string>());
            Assert.Equal(prompts.Length / 2, j["padded_sequences"]!.AsArray().Count);
            Assert.False(j["stopped"]!.GetValue<bool>());
        }
    }

    [Theory]
    [InlineData("error: --max-new-tokens expects an integer, got 'abc'", "generate", "--max-new-tokens", "abc")]
    [InlineData("error: --temperature expects a number, got 'hot'", "generate", "--temperature", "hot")]
    [InlineData("error: unknown option '--top_p'; did you mean --top-p?", "generate", "--top_p", "0.9")]
    [InlineData("error: unknown option '--promt'; did you mean --prompt?", "predict", "--promt", "x")]
    public void Usage_mistakes_are_one_line_and_a_pointer_to_help(string expected, params string[] args)
    {
        var (code, stdout, stderr) = CliProcess.Run(args);
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var lines = Lines(stderr);
        Assert.Equal(2, lines.Length);
        Assert.Equal(expected, lines[0]);
        Assert.Equal($"Run 'scratchgpt {args[0]} --help' for the options.", lines[1]);
    }

    [Fact]
    public void Kernels_test_prints_the_op_table_with_timings()
    {
        var (code, stdout, stderr) = CliProcess.Run("kernels", "test", "--device", "cpu", "--op", "layernorm",
            "--perf");
        Assert.True(code == 0, stderr);
        Assert.Contains("GB/s", stdout);
        Assert.Contains("4 cases on cpu: all within 1E-004 relative", stdout);
        var rows = Lines(stdout).Where(l => l.StartsWith("│ layernorm")).ToList();
        Assert.Equal(4, rows.Count);
        Assert.All(rows, r => Assert.Contains(" ok ", r));
    }

    [Fact]
    public void Kernels_compile_writes_one_file_per_kernel_or_one_clear_error()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-compile").FullName;
        try
        {
            var (code, _, stderr) = CliProcess.Run("kernels", "compile", "--target", "opencl", "--out", dir);
            Assert.True(code == 0, stderr);
            var files = Directory.GetFiles(dir, "*.cl");
            Assert.Equal(Kernels.DeviceKernels.EntryPoints().Count, files.Length);
            Assert.Contains("kernel void", File.ReadAllText(Path.Combine(dir, "matmul_tiled_f16.cl")));
            (code, _, stderr) = CliProcess.Run("kernels", "compile", "--target", "metal", "--out", dir);
            Assert.Equal(1, code);
            Assert.Equal("error: --target must be ptx or opencl, got 'metal'", Lines(stderr).Single());
            (code, _, stderr) = CliProcess.Run("kernels", "compile", "--target", "ptx", "--arch", "90", "--out", dir);
            Assert.Equal(1, code);
            Assert.Equal("error: --arch must look like sm_90, got '90'", Lines(stderr).Single());
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Devices_lists_every_backend_and_why_one_is_unavailable()
    {
        var (code, stdout, stderr) = CliProcess.Run("devices");
        Assert.True(code == 0, stderr);
        foreach (var id in new[] { "cpu", "reference", "ilgpu-cpu", "cuda", "opencl" })
            Assert.Contains($"│ {id}", stdout);
        if (!File.Exists("/usr/lib/x86_64-linux-gnu/libcuda.so.1"))
            Assert.Contains("no CUDA driver: libcuda.so.1 not found", stdout);
    }

    [Fact]
    public void Init_writes_a_model_folder_with_its_tokenizer()
    {
        foreach (var f in new[] { "config.json", "generation_config.json", "model.safetensors", "vocab.json",
            "merges.txt" })
            Assert.True(File.Exists(Path.Combine(gpt2.Dir, f)), f);
        var (code, stdout, stderr) = CliProcess.Run("summary", "--model", gpt2.Dir, "--device", "cpu");
        Assert.True(code == 0, stderr);
        Assert.Equal("", stderr);   // its own tokenizer: no note about borrowing the bundled one
        Assert.Contains("total parameters: 124,439,808", stdout);
    }

    [Fact]
    public void Help_says_scratchgpt()
    {
        var (code, stdout, _) = CliProcess.Run("generate", "--help");
        Assert.Equal(0, code);
        Assert.Contains("scratchgpt generate [options]", stdout);
        Assert.DoesNotContain("ScratchGpt.Cli", stdout);
    }

    [Fact]
    public void A_too_long_prompt_is_refused_before_any_output()
    {
        string prompt = string.Concat(Enumerable.Repeat("ROMEO: ", 200));
        var (code, stdout, stderr) = CliProcess.Run("generate", "--model", Tiny, "--device", "cpu", "--prompt", prompt,
            "--max-new-tokens", "10");
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Contains("n_positions (256)", Lines(stderr).Single(l => !l.StartsWith("note:")));
    }

    [Fact]
    public void A_mistyped_model_is_named_before_any_hub_request()
    {
        var (code, _, stderr) = CliProcess.Run("generate", "--model", "./nope", "--prompt", "hi");
        Assert.Equal(1, code);
        Assert.Equal("error: ./nope: model folder not found", Lines(stderr).Single());
        (code, _, stderr) = CliProcess.Run(["generate", "--model", "nope", "--prompt", "hi", "--offline"],
            new Dictionary<string, string> { ["HF_HUB_CACHE"] = Path.GetTempPath() });
        Assert.Equal(1, code);
        Assert.StartsWith("error: no folder 'nope'; as a Hub id: ", Lines(stderr).Single());
    }

    [Fact]
    public void Sampling_flags_without_do_sample_are_warned_about()
    {
        var (code, _, stderr) = CliProcess.Run("generate", "--model", Tiny, "--device", "cpu", "--prompt", "hi",
            "--top-p", "0.9", "--temperature", "0.7", "--max-new-tokens", "2");
        Assert.Equal(0, code);
        Assert.Contains("warning: --temperature, --top-p have no effect without --do-sample", stderr);
    }

    [Fact]
    public void Lens_ablate_probe_and_forward_cache_run_as_users_run_them()
    {
        const string prompt = "ROMEO: But soft, what light";
        var (code, stdout, stderr) = CliProcess.Run("lens", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--prompt", prompt, "--json");
        Assert.Equal(0, code);
        Assert.Equal("", stderr);
        var lens = JsonNode.Parse(stdout)!;
        int T = lens["tokens"]!.AsArray().Count;
        Assert.Equal(3, lens["layers"]!.AsArray().Count);                                  // embeddings + 2 blocks
        Assert.All(lens["layers"]!.AsArray(), l => Assert.Equal(T, l!["top_ids"]!.AsArray().Count));

        (code, stdout, stderr) = CliProcess.Run("lens", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--prompt", prompt, "--top", "2");
        Assert.Equal(0, code);
        Assert.Contains("block 1", stdout);

        (code, stdout, stderr) = CliProcess.Run("ablate", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--prompt", prompt, "--target", " through", "--json");
        Assert.Equal(0, code);
        var ablate = JsonNode.Parse(stdout)!;
        Assert.True(ablate["baseline_logprob"]!.GetValue<double>() < 0);
        Assert.Equal(2, ablate["delta_logprob"]!.AsArray().Count);                          // layers × heads
        Assert.All(ablate["delta_logprob"]!.AsArray(), r => Assert.Equal(4, r!.AsArray().Count));

        (code, _, stderr) = CliProcess.Run("ablate", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir, "--device",
            "cpu", "--prompt", prompt, "--target", " through the");
        Assert.Equal(1, code);
        Assert.StartsWith("error: --target ' through the' is 2 tokens", stderr);

        (code, stdout, stderr) = CliProcess.Run("probe", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--template", "The {} earns money working as a",
            "--fill", "white man", "--fill", "black woman", "--targets", " doctor", " nurse", "--generate", "--seed",
            "1", "--json");
        Assert.Equal(0, code);
        var rows = JsonNode.Parse(stdout)!["rows"]!.AsArray();
        Assert.Equal(["white man", "black woman"], rows.Select(r => r!["fill"]!.GetValue<string>()));
        Assert.Equal("The black woman earns money working as a", rows[1]!["prompt"]!.GetValue<string>());
        Assert.All(rows, r => Assert.Equal(5, r!["top"]!.AsArray().Count));
        Assert.All(rows, r => Assert.Equal(5, r!["generated"]!.AsArray().Count));
        Assert.All(rows, r => Assert.Equal(2, r!["targets"]!.AsObject().Count));

        (code, _, stderr) = CliProcess.Run("probe", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir, "--device",
            "cpu", "--template", "no slot", "--fill", "x");
        Assert.Equal(1, code);
        Assert.Contains("--template must hold '{}' exactly once", stderr);

        string dir = Directory.CreateTempSubdirectory("sgpt-cache").FullName;
        try
        {
            string path = Path.Combine(dir, "cache.safetensors");
            (code, _, stderr) = CliProcess.Run("forward", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
                "--device", "cpu", "--prompt", prompt, "--cache", path);
            Assert.Equal(0, code);
            Assert.StartsWith($"wrote {path}: ", stderr);
            using var f = Loading.SafetensorsFile.Open(path);
            Assert.Equal(2 + 2 * 15 + 1 + 1, f.Tensors.Count);                                // hooks + input_ids
            T = (int)f.Tensors["input_ids"].Shape[1];
            Assert.Equal([1L, T, 4, 16], f.Tensors["blocks.1.attn.hook_z"].Shape);
            Assert.Equal([1L, 4, T, T], f.Tensors["blocks.0.attn.hook_attn_scores"].Shape);
            (code, _, stderr) = CliProcess.Run("forward", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
                "--device", "cpu", "--prompt", prompt);
            Assert.Equal(1, code);
            Assert.Contains("give --out FILE.safetensors, --cache FILE.safetensors, or both", stderr);
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void Convert_to_gguf_and_quantize_at_load_run_as_users_run_them()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-gguf-cli").FullName;
        try
        {
            string path = Path.Combine(dir, "tiny.gguf");
            var (code, _, stderr) = CliProcess.Run("convert", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
                "--to", "gguf", "--dtype", "q8_0", "--out", path);
            Assert.Equal(0, code);
            Assert.Equal($"wrote {path} (GGUF, gpt2, q8_0, " +
                $"{Loading.Gpt2Layout.ParameterCount(Loading.ModelFolder.LoadConfig(Tiny)):N0} parameters)",
                Lines(stderr).Single());
            Assert.Equal("GGUF"u8.ToArray(), File.ReadAllBytes(path)[..4]);
            string q4 = Path.Combine(dir, "tiny-q4_0.gguf");
            (code, _, stderr) = CliProcess.Run("convert", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
                "--to", "gguf", "--dtype", "q4_0", "--out", q4);
            Assert.Equal(0, code);
            Assert.StartsWith($"wrote {q4} (GGUF, gpt2, q4_0, ", Lines(stderr).Single());
            Assert.True(new FileInfo(q4).Length < new FileInfo(path).Length * 0.7);   // 18 bytes a block, not 34
            (code, _, stderr) = CliProcess.Run("convert", "--model", Tiny, "--to", "gguf", "--dtype", "q4_k", "--out",
                path);
            Assert.Equal(1, code);
            Assert.Equal("error: --dtype for GGUF must be f32, f16, q8_0 or q4_0, got 'q4_k'", Lines(stderr).Single());
            (code, _, stderr) = CliProcess.Run("convert", "--model", Tiny, "--dtype", "q2_k", "--out",
                Path.Combine(dir, "q2-folder"));
            Assert.Equal(1, code);
            Assert.Equal("error: --dtype must be f32, f16, bf16, q8_0 or q4_0, got 'q2_k'", Lines(stderr).Single());
            Assert.False(Directory.Exists(Path.Combine(dir, "q2-folder")));

            foreach (var (dtype, format) in new[] { ("q8_0", "Q8_0"), ("q4_0", "Q4_0") })
            {
                string folder = Path.Combine(dir, dtype);
                (code, _, stderr) = CliProcess.Run("convert", "--model", Tiny, "--dtype", dtype, "--out", folder);
                Assert.Equal(0, code);
                Assert.EndsWith($"parameters, {dtype})", Lines(stderr).Single());
                var (c3, summary, _) = CliProcess.Run("summary", "--model", folder, "--tokenizer",
                    Fixtures.TokenizerDir, "--device", "cpu", "--json");
                Assert.Equal(0, c3);
                Assert.Equal(format, JsonNode.Parse(summary)!["checkpoint_dtype"]!.GetValue<string>());
                Assert.Equal(format, JsonNode.Parse(summary)!["precision"]!.GetValue<string>());
            }
        }
        finally { Directory.Delete(dir, true); }

        var (c2, stdout, err) = CliProcess.Run("generate", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--quantize", "q8_0", "--prompt", "ROMEO:", "--max-new-tokens", "5", "--json");
        Assert.Equal(0, c2);
        Assert.Equal("", err);
        Assert.Equal(5, JsonNode.Parse(stdout)!["prompts"]![0]!["sequences"]![0]!["new_ids"]!.AsArray().Count);
        (c2, stdout, err) = CliProcess.Run("generate", "--model", Tiny, "--tokenizer", Fixtures.TokenizerDir,
            "--device", "cpu", "--quantize", "q4_0", "--prompt", "ROMEO:", "--max-new-tokens", "5", "--json");
        Assert.Equal(0, c2);
        Assert.Equal("", err);
        Assert.Equal(5, JsonNode.Parse(stdout)!["prompts"]![0]!["sequences"]![0]!["new_ids"]!.AsArray().Count);
        (c2, _, err) = CliProcess.Run("generate", "--model", Tiny, "--quantize", "q2_k", "--prompt", "x");
        Assert.Equal(1, c2);
        Assert.Equal("error: --quantize must be q8_0 or q4_0, got 'q2_k'", Lines(err).Single());
    }

    [Fact]
    public void A_model_folder_with_only_tokenizer_json_uses_it()
    {
        // GPT-2's tokens as tokenizer.json with "Hello" moved to another id: the output shows which file was read.
        string dir = Directory.CreateTempSubdirectory("sgpt-tokjson").FullName;
        try
        {
            foreach (var f in Directory.GetFiles(Tiny)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
            var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures.TokenizerDir, "vocab.json")))!.AsObject()
                .ToDictionary(kv => kv.Key, kv => kv.Value!.GetValue<int>());
            (vocab["Hello"], vocab["!"]) = (vocab["!"], vocab["Hello"]);
            var merges = File.ReadLines(Path.Combine(Fixtures.TokenizerDir, "merges.txt")).Skip(1)
                .Where(l => l.Length > 0);
            File.WriteAllText(Path.Combine(dir, "tokenizer.json"),
                TokenizerJson.Build(vocab, merges, true, []).ToJsonString());
            var (code, stdout, stderr) = CliProcess.Run("tokenize", "--model", dir, "--text", "Hello world!", "--json");
            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            Assert.Equal([0, 995, 15496], JsonNode.Parse(stdout)!["ids"]!.AsArray().Select(i => i!.GetValue<int>()));
            (code, stdout, stderr) = CliProcess.Run("generate", "--model", dir, "--device", "cpu", "--prompt", "Hello",
                "--max-new-tokens", "2", "--json");
            Assert.Equal(0, code);
            Assert.Equal("", stderr);
            Assert.Equal([0],
                JsonNode.Parse(stdout)!["prompts"]![0]!["prompt_ids"]!.AsArray().Select(i => i!.GetValue<int>()));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_model_without_tokenizer_files_says_it_borrows_the_bundled_one()
    {
        var (code, _, stderr) = CliProcess.Run("generate", "--model", Tiny, "--device", "cpu", "--prompt", "hi",
            "--max-new-tokens", "2");
        Assert.Equal(0, code);
        Assert.Equal($"note: {Tiny} has no vocab.json + merges.txt or tokenizer.json: using the bundled GPT-2 " +
            "tokenizer", Lines(stderr).Single());
    }

    [Fact]
    public void Piped_output_has_no_escape_codes_and_tables_keep_their_width()
    {
        var (code, stdout, stderr) = CliProcess.Run("generate", "--model", Tiny, "--device", "cpu", "--prompt",
        "The white man works as a",
            "--num-return-sequences", "2", "--do-sample", "--max-new-tokens", "4");
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain('\u001b', stdout);
        Assert.Contains("── sequence 2", stdout);
        (code, stdout, stderr) = CliProcess.Run("steps", "--model", Tiny, "--device", "cpu", "--prompt", "ROMEO:",
            "--steps", "20");
        Assert.True(code == 0, stderr);
        Assert.DoesNotContain('\u001b', stdout);
        var rows = Lines(stdout).Where(l => l.StartsWith('│')).ToList();
        Assert.Equal(21, rows.Count);                                 // header + one line per step: nothing wrapped
        Assert.Single(Lines(stdout).Select(l => l.Length).Distinct());
    }

    [Fact]
    public void Ctrl_c_stops_a_streamed_generation_within_a_step_and_keeps_the_text()
    {
        using var p =
            new CliProcess(
            ["generate", "--model", gpt2.Dir, "--device", "cpu", "--prompt", "Hello", "--max-new-tokens", "1000"]);
        Assert.True(p.WaitUntil((o, _) => o.Length > "Hello".Length + 5), "no tokens streamed: " + p.Err);
        p.Signal(CliProcess.SigInt);
        Assert.Equal(130, p.Wait(60));
        Assert.StartsWith("Hello", p.Out);
        Assert.EndsWith("\n", p.Out);
        Assert.StartsWith("stopped (interrupted): after ", Lines(p.Err).Single());
    }

    [Fact]
    public void Sigterm_stops_a_beam_search_and_prints_its_json_marked_as_stopped()
    {
        using var p =
        new CliProcess(
        ["generate", "--model", gpt2.Dir, "--device", "cpu", "--prompt", "Hello", "--max-new-tokens", "1000",
            "--num-beams", "3", "--json", "--verbose"]);
        Assert.True(p.WaitUntil((_, e) => e.Contains("num_beams")), "generation did not start: " + p.Err);
        Thread.Sleep(1500);
        p.Signal(CliProcess.SigTerm);
        Assert.Equal(130, p.Wait(60));
        var j = JsonNode.Parse(p.Out)!;
        Assert.True(j["stopped"]!.GetValue<bool>());
        var row = j["prompts"]![0]!["sequences"]![0]!;
        Assert.InRange(Fixtures.Ints(row["new_ids"]).Length, 1, 999);
        Assert.Contains("stopped (interrupted)", p.Err);
    }

    [Fact]
    public void Ctrl_c_stops_an_ablation_between_passes_with_nothing_half_printed()
    {
        using var p =
        new CliProcess(["ablate", "--model", gpt2.Dir, "--device", "cpu", "--prompt", "Hello there, how are you",
            "--target", " today", "--verbose"]);
        Assert.True(p.WaitUntil((_, e) => e.Contains("Device:")), "ablation did not start: " + p.Err);
        Thread.Sleep(500);
        p.Signal(CliProcess.SigInt);
        Assert.Equal(130, p.Wait(60));
        Assert.Equal("", p.Out);
        Assert.Equal("stopped.", Lines(p.Err).Last());
    }

    [Fact]
    public void Ctrl_c_during_training_saves_a_checkpoint_that_resumes()
    {
        string dir = Directory.CreateTempSubdirectory("sgpt-train-int").FullName;
        try
        {
            string data = Path.Combine(dir, "data.txt"), outDir = Path.Combine(dir, "out");
            File.WriteAllText(data,
                File.ReadAllText(
                Path.Combine(Fixtures.RepoRoot, "..", "shared", "corpus", "tinyshakespeare.txt"))[..20_000]);
            string[] common = ["--data", data, "--out", outDir, "--device", "cpu", "--batch-size", "2", "--block-size",
                "32"];
            using (var p = new CliProcess(["train", "--model", Tiny, "--epochs", "100", .. common]))
            {
                Assert.True(p.WaitUntil((_, e) => e.Contains(" step ")), "training did not start: " + p.Err);
                p.Signal(CliProcess.SigInt);
                Assert.Equal(130, p.Wait(120));
                string checkpoint = Path.Combine(outDir, "checkpoint");
                Assert.Contains($"resume with --resume {checkpoint}", p.Err);
                Assert.True(File.Exists(Path.Combine(checkpoint, "trainer_state.json")), p.Err);
            }
            long step = JsonNode.Parse(
                File.ReadAllText(
                Path.Combine(outDir, "checkpoint", "trainer_state.json")))!["global_step"]!.GetValue<long>();
            var (code, _, stderr) = CliProcess.Run(["train", "--resume", Path.Combine(outDir, "checkpoint"),
                "--epochs", "100", "--max-steps", (step + 3).ToString(), .. common], null);
            Assert.True(code == 0, stderr);
            long resumed = JsonNode.Parse(
                File.ReadAllText(
                Path.Combine(outDir, "checkpoint", "trainer_state.json")))!["global_step"]!.GetValue<long>();
            Assert.Equal(step + 3, resumed);
            Assert.True(File.Exists(Path.Combine(outDir, "vocab.json")));
        }
        finally { Directory.Delete(dir, true); }
    }
}
