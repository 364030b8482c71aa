using System.CommandLine;
using System.Diagnostics;
using System.Text.Json.Nodes;
using ScratchGpt.Backends;
using ScratchGpt.Backends.Cpu;
using ScratchGpt.Decoding;
using ScratchGpt.Model;
using Spectre.Console;

namespace ScratchGpt.Cli;

/// <summary>
/// scratchgpt bench: prefill and decode speed, time to first token, load time and peak memory, set
/// against the bandwidth floor: every decode step must read all weights once and, for each sequence, the keys and
/// values of every position so far, so floor = (weight bytes + KV-cache bytes) per step ÷ measured memory bandwidth,
/// the bandwidth probed just before every timed run (<see cref="BandwidthProbe"/>) and each run set against its own
/// probe.
/// </summary>
public static class BenchCommand
{
    static readonly Option<int> PromptTokens = new("--prompt-tokens") { DefaultValueFactory = _ => 128 };
    static readonly Option<int> NewTokens = new("--new-tokens") { DefaultValueFactory = _ => 128 };
    static readonly Option<int> Batch = new("--batch")
    {
        Description = "sequences decoded together: each step is one batched pass (Gpt2Model.AppendEach), the weights " +
            "read once for all",
        DefaultValueFactory = _ => 1,
    };
    static readonly Option<int> Runs = new("--runs")
    {
        Description = "timed runs after one warm-up (median reported)",
        DefaultValueFactory = _ => 3,
    };
    static readonly Option<bool> Profile = new("--profile")
    {
        Description = "time every backend call of the last run's decode: where a token's time goes (exact on the CPU)",
    };

    public static Command Create()
    {
        var c = new Command("bench", "Measure prefill and decode speed against the memory-bandwidth floor.");
        Common.AddModelOptions(c);
        foreach (var o in new Option[] { PromptTokens, NewTokens, Batch, Runs, Profile, Common.Json }) c.Options.Add(o);
        Common.Action(c, (p, ct) =>
        {
            int P = p.GetValue(PromptTokens), N = p.GetValue(NewTokens), B = p.GetValue(Batch), R = p.GetValue(Runs);
            if (P < 1) throw new ArgumentException($"--prompt-tokens must be ≥ 1, got {P}");
            if (N < 1) throw new ArgumentException($"--new-tokens must be ≥ 1, got {N}");
            if (B < 1) throw new ArgumentException($"--batch must be ≥ 1, got {B}");
            if (R < 1) throw new ArgumentException($"--runs must be ≥ 1, got {R}");
            var sw = Stopwatch.StartNew();
            ProfilingBackend? profiler = null;
            using var model = Common.LoadModel(p, p.GetValue(Profile) ? b => profiler = new ProfilingBackend(b) : null);
            double loadS = sw.Elapsed.TotalSeconds;
            if (P + N > model.Config.NPositions)
                throw new ArgumentException($"--prompt-tokens + --new-tokens = {P + N} is more than n_positions " +
                    $"({model.Config.NPositions})");

            var rng = new Random(0);
            int[] prompt = Enumerable.Range(0, P).Select(_ => rng.Next(model.VocabSize)).ToArray();
            var prefill = new List<double>(); var decode = new List<double>(); var ttft = new List<double>();
            var logits = new float[model.VocabSize];
            var probe = new BandwidthProbe();
            var bandwidths = new List<double>();   // one probe just before each timed run
            double lastDecodeMsPerToken = 0;   // the profiled run's own step time
            bool progress = !Console.IsErrorRedirected;   // a line redrawn with \r only on a terminal
            for (int run = 0; run <= R; run++)
            {
                ct.ThrowIfCancellationRequested();
                if (progress) Console.Error.Write($"\r{(run == 0 ? "warm-up" : $"run {run}/{R}")} …");
                if (run > 0) bandwidths.Add(probe.Measure());
                var sessions = Enumerable.Range(0, B).Select(_ => model.CreateSession(P + N)).ToList();
                var t0 = Stopwatch.StartNew();
                foreach (var s in sessions) s.Append(prompt, logits);
                double pre = t0.Elapsed.TotalSeconds;
                int next = TokenMath.Argmax(logits);
                double first = t0.Elapsed.TotalSeconds;
                profiler?.Reset();   // the profile covers the decode steps of the last run
                var t1 = Stopwatch.StartNew();
                if (B == 1)
                {
                    var one = new int[1];   // batch 1 decodes as generate does, through the session alone
                    for (int i = 0; i < N - 1; i++)
                    {
                        one[0] = next;
                        sessions[0].Append(one, logits);
                        next = TokenMath.Argmax(logits);
                    }
                }
                else
                {
                    var nexts = Enumerable.Repeat(next, B).ToArray();
                    var batchLogits = new float[B * model.VocabSize];
                    for (int i = 0; i < N - 1; i++)
                    {
                        model.AppendEach(sessions, nexts, batchLogits);
                        for (int b = 0; b < B; b++)
                            nexts[b] = TokenMath.Argmax(batchLogits.AsSpan(b * model.VocabSize, model.VocabSize));
                    }
                }
                double dec = t1.Elapsed.TotalSeconds;
                lastDecodeMsPerToken = dec * 1000 / (B * (N - 1));
                foreach (var s in sessions) s.Dispose();
                if (run == 0) continue;
                prefill.Add(B * P / pre); ttft.Add(first * 1000); decode.Add(B * (N - 1) / dec);
            }
            if (progress) Console.Error.WriteLine("\r                    ");

            double bandwidth = Median(bandwidths);
            // what a matmul reads per weight, as this backend holds it (the ILGPU backend holds Q8_0 and Q4_0 as
            // float32, the CPU backend the scales of both as float32)
            double bytesPer = model.Backend.BytesPerWeight(model.Precision);
            var cfg = model.Config;
            // wpe: one row per token
            long weightBytes = (long)((model.ParameterCount - (long)cfg.NPositions * cfg.NEmbd) * bytesPer);
            // A step at position p reads k and v of positions 0..p in every layer (n_layer · 2 · n_embd values a
            // position); the timed steps are at positions P .. P + N − 2, so they read P + N/2 positions on average.
            long kvBytes = (long)(cfg.NLayer * 2L * cfg.NEmbd * model.Backend.BytesPerCacheValue(model.KvCache)
                * (P + N / 2.0));
            long stepBytes = weightBytes + B * kvBytes;
            double floorMs = stepBytes / bandwidth * 1000;
            double decodeTokS = Median(decode), msPerToken = 1000.0 / decodeTokS * B;
            double fraction = BandwidthProbe.FractionOfFloor([.. decode.Select(d => d / B)], bandwidths, stepBytes);
            var o = new JsonObject
            {
                ["model"] = Common.ModelDir(p), ["device"] = model.Backend.Kind,
                ["device_name"] = model.Backend.DeviceName,
                ["dtype"] = model.Precision.ToString(),
                ["kv_cache"] = model.KvCache.ToString(), ["batch"] = B, ["prompt_tokens"] = P, ["new_tokens"] = N,
                ["prefill_tok_s"] = Math.Round(Median(prefill), 1), ["decode_tok_s"] = Math.Round(decodeTokS, 2),
                ["decode_ms_per_token"] = Math.Round(msPerToken, 3), ["ttft_ms"] = Math.Round(Median(ttft), 2),
                ["load_s"] = Math.Round(loadS, 3), ["peak_memory_bytes"] = Process.GetCurrentProcess().PeakWorkingSet64,
                ["weight_bytes_per_token"] = weightBytes, ["kv_cache_bytes_per_token"] = kvBytes,
                ["bandwidth_gb_s"] = Math.Round(bandwidth / 1e9, 2),
                ["floor_ms_per_token"] = Math.Round(floorMs, 3),
                ["fraction_of_floor"] = Math.Round(fraction, 3),
            };
            if (profiler is not null) o["profile"] = ProfileJson(profiler, B * (N - 1), lastDecodeMsPerToken);
            if (p.GetValue(Common.Json)) Console.WriteLine(o.ToJsonString(StepsCommand.JsonOut));
            else
            {
                foreach (var (k, v) in o) if (k != "profile") Console.WriteLine($"{k,-24} {v}");
                if (o["profile"] is JsonArray rows) PrintProfile(rows);
            }
            return Task.FromResult(0);
        });
        return c;
    }

    /// <summary>Per decoded token: each group of backend calls with its time, share and the bandwidth it reached
    /// reading its weights (matmuls) or the KV cache (attention); "outside the backend" is the rest of the step
    /// (sampling, bookkeeping).</summary>
    private static JsonArray ProfileJson(ProfilingBackend profiler, int tokens, double stepMs)
    {
        var rows = new JsonArray();
        double inside = 0;
        foreach (var e in profiler.Entries())
        {
            double ms = e.Time.TotalMilliseconds / tokens;
            inside += ms;
            rows.Add(new JsonObject
            {
                ["operation"] = e.Operation, ["calls_per_token"] = Math.Round((double)e.Calls / tokens, 2),
                ["ms_per_token"] = Math.Round(ms, 4),
                ["share"] = Math.Round(ms / stepMs, 4),
                ["weight_gb_s"] = e.WeightBytes > 0 ? GigabytesPerSecond(e.WeightBytes, e.Time) : null,
                ["kv_cache_gb_s"] = e.CacheBytes > 0 ? GigabytesPerSecond(e.CacheBytes, e.Time) : null,
            });
        }
        rows.Add(
            new JsonObject { ["operation"] = "outside the backend", ["ms_per_token"] = Math.Round(stepMs - inside, 4),
            ["share"] = Math.Round((stepMs - inside) / stepMs, 4) });
        return rows;
    }

    private static double GigabytesPerSecond(long bytes, TimeSpan time) =>
        Math.Round(bytes / time.TotalSeconds / 1e9, 1);

    private static void PrintProfile(JsonArray rows)
    {
        var table = new Table().AddColumns("operation (decode)", "calls/token", "ms/token", "share", "weights GB/s",
            "KV cache GB/s");
        foreach (var r in rows)
            table.AddRow(Markup.Escape(r!["operation"]!.ToString()), r["calls_per_token"]?.ToString() ?? "",
                r["ms_per_token"]!.GetValue<double>().ToString("F3"),
                r["share"]!.GetValue<double>().ToString("P1"), r["weight_gb_s"]?.ToString() ?? "",
                r["kv_cache_gb_s"]?.ToString() ?? "");
        AnsiConsole.Write(table);
    }

    /// <summary>The middle value (the upper of the two middle ones for an even count): every median bench
    /// reports.</summary>
    internal static double Median(IEnumerable<double> xs) { var s = xs.Order().ToList(); return s[s.Count / 2]; }
}
