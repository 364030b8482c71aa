using System.Diagnostics;
using System.Text.Json.Nodes;

namespace ScratchGpt.Tests;

/// <summary>
/// scripts/paired-bench.py against stand-ins for both sides: a fake scratchgpt that answers init / convert / bench
/// and a fake llama-bench, each with fixed rates and logging how it was called. Checks what the script promises:
/// interleaved pairs pinned to the same cores, our thread count passed on, decode after the prompt on llama.cpp's
/// side (-pg minus -p), the ratios, and the medians. The real run against llama.cpp is in docs/benchmarks.md.
/// </summary>
public class PairedBenchScriptTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("sgpt-paired").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Script(string name, string body)
    {
        string path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, "#!/usr/bin/env bash\n" + body);
        if (!OperatingSystem.IsWindows())
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return path;
    }

    private (int Code, string Stdout, string Stderr) Run(params string[] args)
    {
        var info = new ProcessStartInfo("python3")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        info.ArgumentList.Add(Path.Combine(Fixtures.RepoRoot, "scripts", "paired-bench.py"));
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        Assert.True(p.WaitForExit(120_000), "paired-bench.py did not finish");
        return (p.ExitCode, stdout.Result, stderr.Result);
    }

    [Fact]
    public void Pairs_are_interleaved_pinned_and_decode_is_measured_after_the_prompt()
    {
        string log = Path.Combine(_dir, "calls.log");
        // ours: 500 tok/s prefill, 60 tok/s decode, floor 100 tok/s; its runs, each against its own probe, 0.55 of it
        string cli = Script("scratchgpt", $$"""
            echo "ours $(taskset -cp $$ | sed 's/.*: //') DOTNET_PROCESSOR_COUNT=$DOTNET_PROCESSOR_COUNT" \
                 "AVX512=${DOTNET_EnableAVX512-unset} VNNI=${DOTNET_EnableAVXVNNI-unset} $*" >> {{log}}
            out=""; prev=""
            for a in "$@"; do [ "$prev" = "--out" ] && out="$a"; prev="$a"; done
            case "$1" in
              init|convert)
                if [[ "$out" == *.gguf ]]; then touch "$out"
                else mkdir -p "$out"; touch "$out/model.safetensors"; fi ;;
              bench)
                echo '{"prefill_tok_s": 500.0, "decode_tok_s": 60.0, "floor_ms_per_token": 10.0,' \
                     '"fraction_of_floor": 0.55, "bandwidth_gb_s": 30.0, "kv_cache_bytes_per_token": 5898240,' \
                     '"device_name": "1 cores, X64, AVX2 + FMA"}' ;;
            esac
            """);
        // llama.cpp: -p 128 in 0.32 s (400 tok/s); -pg 128,64 in 1.6 s, so its 64 decoded tokens took 1.28 s (50 tok/s)
        Script("llama/bin/llama-bench", $$"""
            echo "llama $(taskset -cp $$ | sed 's/.*: //') $*" >> {{log}}
            echo '[{"n_prompt": 128, "n_gen": 0, "avg_ns": 320000000, "cpu_info": "AMD EPYC"},' \
                 '{"n_prompt": 128, "n_gen": 64, "avg_ns": 1600000000}]'
            """);

        var (code, stdout, stderr) = Run("--llama", Path.Combine(_dir, "llama"), "--cli", "bash " + cli,
            "--work", Path.Combine(_dir, "work"), "--rounds", "2", "--threads", "1", "--runs", "1");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonNode.Parse(l)!).ToList();
        var pairs = lines.Where(l => l["summary"] is null).ToList();
        var summaries = lines.Where(l => l["summary"] is not null).ToList();
        Assert.Equal(6, pairs.Count);   // 2 rounds × f32, f16, q8_0
        Assert.Equal(["f32", "f16", "q8_0"], summaries.Select(s => s["dtype"]!.GetValue<string>()));
        foreach (var pair in lines)
        {
            Assert.Equal(400.0, pair["llama_cpp"]!["prefill"]!.GetValue<double>());
            Assert.Equal(50.0, pair["llama_cpp"]!["decode"]!.GetValue<double>());
            Assert.Equal(60.0, pair["ours"]!["decode"]!.GetValue<double>());
            Assert.Equal(1.25, pair["ratio"]!["prefill"]!.GetValue<double>());
            Assert.Equal(1.2, pair["ratio"]!["decode"]!.GetValue<double>());
            Assert.Equal(1, pair["threads"]!.GetValue<int>());
        }
        // what the floor counted, kept with each pair
        Assert.All(pairs, p => Assert.Equal(5898240, p["ours"]!["kv_cache_bytes"]!.GetValue<long>()));
        // bench's own decode ÷ floor (its runs paired with their probes), not the ratio of the two medians
        Assert.Equal(0.55, summaries[0]["decode_fraction_of_floor"]!.GetValue<double>());

        // The timed calls alternate ours, llama.cpp; each is pinned to core 0, ours told it has one core, q8_0
        // quantized at load, and llama-bench asked for the prompt alone and for prompt + 64.
        var timed = File.ReadAllLines(log).Where(l => l.StartsWith("llama") || l.Contains(" bench ")).ToList();
        Assert.Equal(12, timed.Count);
        for (int i = 0; i < timed.Count; i++)
        {
            Assert.StartsWith(i % 2 == 0 ? "ours 0 DOTNET_PROCESSOR_COUNT=1" : "llama 0 ", timed[i]);
            if (i % 2 == 1) Assert.Contains("-t 1 -r 1 -p 128 -n 0 -pg 128,64", timed[i]);
            else Assert.Contains("--kv-cache f16", timed[i]);   // both sides' cache in float16, llama.cpp's default
        }
        Assert.Contains("--quantize q8_0", timed[4]);
        Assert.All(timed.Where(l => l.StartsWith("ours")), l => Assert.Contains(" AVX512=unset VNNI=unset ", l));
        Assert.Equal("1 cores, X64, AVX2 + FMA", pairs[0]["ours"]!["device"]!.GetValue<string>());
        Assert.Equal("AMD EPYC", pairs[0]["llama_cpp"]!["cpu_info"]!.GetValue<string>());
        Assert.Equal("native", pairs[0]["isa"]!.GetValue<string>());
        Assert.Equal("f16", pairs[0]["kv_cache"]!.GetValue<string>());
        Assert.EndsWith("gpt2-q8_0.gguf -t 1 -r 1 -p 128 -n 0 -pg 128,64 -ctk f16 -ctv f16 -o json",
            timed[5].Split(" -m ")[1]);
        Assert.DoesNotContain("--quantize", timed[0] + timed[2]);
        Assert.StartsWith("family ", pairs[0]["cpu_id"]!.GetValue<string>());   // model name alone can be ambiguous

        // q4_0 on request: ours quantizes the float32 checkpoint at load, llama.cpp reads our q4_0 GGUF
        File.Delete(log);
        (code, stdout, stderr) = Run("--llama", Path.Combine(_dir, "llama"), "--cli", "bash " + cli,
            "--work", Path.Combine(_dir, "work"), "--rounds", "1", "--threads", "1", "--runs", "1", "--dtypes", "q4_0");
        Assert.True(code == 0, stderr);
        timed = File.ReadAllLines(log).Where(l => l.StartsWith("llama") || l.Contains(" bench ")).ToList();
        Assert.Equal(2, timed.Count);
        Assert.Contains("--quantize q4_0", timed[0]);
        Assert.EndsWith("gpt2-q4_0.gguf -t 1 -r 1 -p 128 -n 0 -pg 128,64 -ctk f16 -ctv f16 -o json",
            timed[1].Split(" -m ")[1]);
        Assert.Contains(File.ReadAllLines(log), l => l.Contains("convert") && l.Contains("--dtype q4_0"));

        // --isa avx2: ours runs with the runtime's AVX-512 and AVX-VNNI turned off
        File.Delete(log);
        (code, stdout, stderr) = Run("--llama", Path.Combine(_dir, "llama"), "--cli", "bash " + cli,
            "--work", Path.Combine(_dir, "work"), "--rounds", "1", "--threads", "1", "--runs", "1", "--dtypes", "f32",
            "--isa", "avx2");
        Assert.True(code == 0, stderr);
        Assert.Contains(File.ReadAllLines(log),
            l => l.StartsWith("ours 0 DOTNET_PROCESSOR_COUNT=1 AVX512=0 VNNI=0 bench"));
        Assert.Equal("avx2", JsonNode.Parse(stdout.Split('\n')[0])!["isa"]!.GetValue<string>());

        // --kv-cache f32: both sides keep a float32 cache
        File.Delete(log);
        (code, _, stderr) = Run("--llama", Path.Combine(_dir, "llama"), "--cli", "bash " + cli,
            "--work", Path.Combine(_dir, "work"), "--rounds", "1", "--threads", "1", "--runs", "1", "--dtypes", "f32",
            "--kv-cache", "f32");
        Assert.True(code == 0, stderr);
        timed = File.ReadAllLines(log).Where(l => l.StartsWith("llama") || l.Contains(" bench ")).ToList();
        Assert.Contains("--kv-cache f32", timed[0]);
        Assert.Contains("-ctk f32 -ctv f32", timed[1]);
        (code, _, stderr) = Run("--llama", Path.Combine(_dir, "llama"), "--isa", "sse2");
        Assert.Equal(2, code);
        Assert.Contains("--isa: invalid choice: 'sse2'", stderr);
    }

    [Fact]
    public void A_saved_run_prints_as_the_markdown_table_of_docs_benchmarks()
    {
        static string Pair(string dtype, int threads, double load, double ours, double llama, double fraction,
            long? kvCacheBytes = null)
        {
            var o = new JsonObject
            {
                ["prefill"] = 2 * ours, ["decode"] = ours, ["floor_decode"] = 100.0,
                ["bandwidth_gb_s"] = 30 + load, ["fraction_of_floor"] = fraction,
            };
            if (kvCacheBytes is { } kv) o["kv_cache_bytes"] = kv;
            return new JsonObject
            {
                ["dtype"] = dtype, ["threads"] = threads, ["load_avg"] = new JsonArray(load, 1.0, 1.0),
                ["ours"] = o,
                ["llama_cpp"] = new JsonObject { ["prefill"] = 2 * llama, ["decode"] = llama },
                ["ratio"] = new JsonObject { ["prefill"] = ours / llama, ["decode"] = ours / llama },
            }.ToJsonString();
        }
        string run = Path.Combine(_dir, "run.jsonl");
        // q8_0 on two threads first, then f32 on one: the table keeps the run's order; a summary line is skipped
        File.WriteAllLines(run, [
            Pair("q8_0", 2, 1.5, 120, 100, 0.9), Pair("f32", 1, 0.5, 60, 50, 0.8), Pair("q8_0", 2, 2.5, 150, 100, 0.7),
            Pair("f32", 1, 1.0, 50, 50, 0.6), Pair("q8_0", 2, 1.0, 90, 100, 0.95), """{"summary": true}"""]);
        var (code, stdout, stderr) = Run("--table", run);
        Assert.True(code == 0, stderr);
        Assert.Equal([
            "| dtype, threads | ours | llama.cpp | ours ÷ llama.cpp | our decode ÷ floor |",
            "| --- | --- | --- | --- | --- |",
            "| q8_0, 2 threads | 240 / 120.0 | 200 / 100.0 | **1.20** / **1.20** | 0.90 |",
            "| f32, 1 thread | 110 / 55.0 | 100 / 50.0 | **1.10** / **1.10** | 0.70 |",
            "",
            "Per pair (prefill/decode): q8_0 2t 1.20/1.20, 1.50/1.50, 0.90/0.90; f32 1t 1.20/1.20, 1.00/1.00",
            "Load 0.5–2.5, probe 30–32 GB/s, 5 pairs; " +
            "floor: not recorded (bench counted the weights alone until session 22)"],
            stdout.TrimEnd('\n').Split('\n'));
        // a run whose bench counted the KV cache says so
        File.WriteAllLines(run, [Pair("f16", 1, 1.0, 80, 70, 0.85, kvCacheBytes: 5898240),
            Pair("f16", 1, 1.2, 82, 70, 0.86, kvCacheBytes: 5898240)]);
        (code, stdout, stderr) = Run("--table", run);
        Assert.True(code == 0, stderr);
        Assert.EndsWith("2 pairs; floor: weights + KV cache", stdout.TrimEnd('\n'));

        (code, stdout, stderr) = Run("--table", Path.Combine(_dir, "missing.jsonl"));
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        Assert.Equal($"paired-bench: --table {Path.Combine(_dir, "missing.jsonl")}: No such file or directory",
            stderr.Trim());
        File.WriteAllLines(run, ["""{"summary": true}""", "not json"]);
        (_, _, stderr) = Run("--table", run);
        Assert.Equal($"paired-bench: --table {run}: line 2 is not a JSON object", stderr.Trim());
    }

    [Fact]
    public void A_folder_without_llama_bench_is_refused_in_one_line()
    {
        var (code, stdout, stderr) = Run("--llama", Path.Combine(_dir, "nowhere"));
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        Assert.Equal($"paired-bench: --llama {Path.Combine(_dir, "nowhere")}: no executable bin/llama-bench there",
            stderr.Trim());
    }
}
