#!/usr/bin/env python3
"""Paired CPU benchmark: scratchgpt against llama.cpp on the same weights, interleaved.

Usage:
    python3 scripts/paired-bench.py --llama /tmp/llama/build [--rounds 3] [--dtypes f32,f16,q8_0,q4_0] [--threads 2,1]
        [--isa native|avx2] [--kv-cache f16|f32]

Both runtimes read the same numbers: one random gpt2-shaped checkpoint (`scratchgpt init --config gpt2`), which our
own exporter writes as GGUF for llama.cpp (`scratchgpt convert --to gguf --dtype …`). For every round, thread count
and dtype it runs ours, then llama-bench, pinned with taskset to the same cores (1 thread: core 0), and prints one
JSON line per pair: both prefill and decode rates, their ratios, the load average before the pair, and our
bandwidth floor with bench's `fraction_of_floor` (each of its timed runs against a bandwidth probe taken just before
it). The last lines (`"summary": true`) are the medians per configuration. Every line names the CPU: /proc/cpuinfo's
model name, and its family, model and the vector extensions that pick our kernels (the model name alone can be the
same for two generations, e.g. "AMD EPYC" for Zen 4 and Zen 5).

Decode is measured after the prompt on both sides: ours decodes after a 128-token prefill; for llama.cpp it is
`-pg 128,64` minus `-p 128` (64 tokens ÷ the difference of the two times), as its plain `-n 64` starts from an
empty cache. llama.cpp's threads spin, so a pair is only meaningful on a quiet machine: check `load_avg`.

Both sides keep their KV cache in float16 (`--kv-cache f16`, llama-bench's default `-ctk f16 -ctv f16`, passed to it
explicitly); `--kv-cache f32` runs both with a float32 cache, ours then holding exactly transformers' numbers.

`--isa avx2` runs ours as a CPU with AVX2 + FMA and nothing newer would (Zen 2/3, Skylake … Comet Lake): the
runtime's DOTNET_EnableAVX512=0 and DOTNET_EnableAVXVNNI=0 turn the AVX-512 and AVX-VNNI kernels off. Pair it with a
llama.cpp build limited to the same instructions, so that both sides run an AVX2 machine's code on this CPU. Each pair
records our device line (which names the instructions our kernels use) and the features llama-bench reports.

llama.cpp is not part of this repository: build it yourself, outside it (https://github.com/ggerganov/llama.cpp),
and pass the build folder. Our CLI is built (Release) if `--cli` is not given.

`--table RUN.jsonl` runs nothing: it prints a saved run's output as the markdown table docs/benchmarks.md keeps per run
(medians per dtype and thread count, then every pair's ratios, the load and probe ranges).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown"


def cpu_id():
    """'family F model M' and the extensions that choose between our kernels, from /proc/cpuinfo."""
    fields = {}
    with open("/proc/cpuinfo") as f:
        for line in f:
            if ":" in line:
                k, v = (x.strip() for x in line.split(":", 1))
                fields.setdefault(k, v)
    flags = fields.get("flags", "").split()
    wanted = [x for x in ("avx2", "avx512bw", "avx_vnni", "avx512_vnni") if x in flags]
    return f"family {fields.get('cpu family', '?')} model {fields.get('model', '?')} " + " ".join(wanted)


def run(cmd, env=None):
    """Runs a command; on failure prints its stderr and stops the script."""
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"paired-bench: {' '.join(cmd)} failed (exit {p.returncode}): {p.stderr.strip()[-500:]}")
    return p.stdout


def cores(threads):
    return ",".join(str(c) for c in range(threads))


# what each --isa turns off in our runtime
ISA_ENV = {"native": {}, "avx2": {"DOTNET_EnableAVX512": "0", "DOTNET_EnableAVXVNNI": "0"}}


def ours(cli, model, quantize, threads, prompt, gen, runs, isa="native", kv_cache="f16"):
    env = dict(os.environ, DOTNET_PROCESSOR_COUNT=str(threads), **ISA_ENV[isa])
    cmd = ["taskset", "-c", cores(threads)] + cli + ["bench", "--model", model, "--device", "cpu",
                                                    "--prompt-tokens", str(prompt), "--new-tokens", str(gen),
                                                    "--runs", str(runs), "--kv-cache", kv_cache, "--json"]
    if quantize:
        cmd += ["--quantize", quantize]
    r = json.loads(run(cmd, env))
    out = {"prefill": r["prefill_tok_s"], "decode": r["decode_tok_s"],
           "floor_decode": round(1000 / r["floor_ms_per_token"], 1), "bandwidth_gb_s": r["bandwidth_gb_s"],
           "fraction_of_floor": r["fraction_of_floor"],
           "device": r.get("device_name", "")}
    if "kv_cache_bytes_per_token" in r:   # what the floor counted beside the weights: the KV cache a step reads
        out["kv_cache_bytes"] = r["kv_cache_bytes_per_token"]
    return out


def llama(bench, gguf, threads, prompt, gen, runs, kv_cache="f16"):
    cmd = ["taskset", "-c", cores(threads), bench, "-m", gguf, "-t", str(threads), "-r", str(runs),
           "-p", str(prompt), "-n", "0", "-pg", f"{prompt},{gen}", "-ctk", kv_cache, "-ctv", kv_cache, "-o", "json"]
    rows = json.loads(run(cmd))
    pp = next(r for r in rows if r["n_gen"] == 0)
    pg = next(r for r in rows if r["n_gen"] == gen and r["n_prompt"] == prompt)
    decode_s = (pg["avg_ns"] - pp["avg_ns"]) / 1e9   # the 64 tokens after the prompt
    return {"prefill": round(prompt / (pp["avg_ns"] / 1e9), 1), "decode": round(gen / decode_s, 2),
            "cpu_info": pp.get("cpu_info", ""), "build_commit": pp.get("build_commit", "")}


def configurations(pairs):
    """The pairs of each (dtype, threads), in the order the run first took them (threads, then dtypes)."""
    groups = {}
    for p in pairs:
        groups.setdefault((p["dtype"], p["threads"]), []).append(p)
    return groups.items()


def table(path):
    """A saved run as docs/benchmarks.md shows it: per (dtype, threads), in the order the run took them, the medians of
    both sides' prefill / decode rates, their ratio and our decode ÷ floor (bench's fraction_of_floor; runs from
    before it existed: decode over floor_decode), then each pair's ratios, the run's load and probe ranges and what its
    floor counted (the weights and the KV cache; runs from before bench counted the cache do not record it)."""
    try:
        with open(path) as f:
            lines = [(n, l) for n, l in enumerate(f, 1) if l.strip()]
    except OSError as e:
        sys.exit(f"paired-bench: --table {path}: {e.strerror}")
    rows = []
    for n, l in lines:
        try:
            rows.append(json.loads(l))
        except json.JSONDecodeError:
            sys.exit(f"paired-bench: --table {path}: line {n} is not a JSON object")
    pairs = [r for r in rows if not r.get("summary")]
    if not pairs:
        sys.exit(f"paired-bench: --table {path}: no pairs in it")
    print("| dtype, threads | ours | llama.cpp | ours ÷ llama.cpp | our decode ÷ floor |")
    print("| --- | --- | --- | --- | --- |")
    per = []
    for (dtype, t), ps in configurations(pairs):
        med = lambda f: statistics.median(f(p) for p in ps)
        op, od = med(lambda p: p["ours"]["prefill"]), med(lambda p: p["ours"]["decode"])
        lp, ld = med(lambda p: p["llama_cpp"]["prefill"]), med(lambda p: p["llama_cpp"]["decode"])
        floor = med(lambda p: p["ours"].get("fraction_of_floor") or p["ours"]["decode"] / p["ours"]["floor_decode"])
        name = f"{t} thread" + ("s" if t > 1 else "")
        print(f"| {dtype}, {name} | {op:.0f} / {od:.1f} | {lp:.0f} / {ld:.1f} | "
              f"**{op / lp:.2f}** / **{od / ld:.2f}** | {floor:.2f} |")
        per.append(f"{dtype} {t}t " + ", ".join(f"{p['ratio']['prefill']:.2f}/{p['ratio']['decode']:.2f}" for p in ps))
    print()
    print("Per pair (prefill/decode):", "; ".join(per))
    loads = [p["load_avg"][0] for p in pairs]
    probes = [p["ours"]["bandwidth_gb_s"] for p in pairs]
    with_cache = sum("kv_cache_bytes" in p["ours"] for p in pairs)
    floor = ("weights + KV cache" if with_cache == len(pairs)
             else "not recorded (bench counted the weights alone until session 22)" if with_cache == 0
             else f"weights + KV cache in {with_cache} of the pairs, not recorded in the rest")
    print(f"Load {min(loads)}–{max(loads)}, probe {min(probes):.0f}–{max(probes):.0f} GB/s, {len(pairs)} pairs; "
          f"floor: {floor}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--llama", help="llama.cpp build folder (has bin/llama-bench)")
    ap.add_argument("--table", metavar="RUN.jsonl", help="print a saved run as a markdown table; runs nothing")
    ap.add_argument("--cli", help="command that runs scratchgpt (default: build and run the Release CLI)")
    ap.add_argument("--work", help="folder for the checkpoint and GGUF files (default: a new temporary folder)")
    ap.add_argument("--dtypes", default="f32,f16,q8_0")
    ap.add_argument("--threads", default="2,1")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=3, help="timed runs per measurement on each side")
    ap.add_argument("--prompt-tokens", type=int, default=128)
    ap.add_argument("--new-tokens", type=int, default=64)
    ap.add_argument("--isa", default="native", choices=sorted(ISA_ENV),
                    help="avx2: ours without its AVX-512 and AVX-VNNI kernels (pair with a llama.cpp built likewise)")
    ap.add_argument("--kv-cache", default="f16", choices=["f16", "f32"],
                    help="KV cache type on both sides (default f16, llama.cpp's default)")
    a = ap.parse_args()
    if a.table:
        table(a.table)
        return
    if not a.llama:
        ap.error("--llama is required (or --table RUN.jsonl)")

    bench = os.path.join(a.llama, "bin", "llama-bench")
    if not os.access(bench, os.X_OK):
        sys.exit(f"paired-bench: --llama {a.llama}: no executable bin/llama-bench there")
    dtypes = a.dtypes.split(",")
    for d in dtypes:
        if d not in ("f32", "f16", "q8_0", "q4_0"):
            sys.exit(f"paired-bench: --dtypes: unknown dtype '{d}' (f32, f16, q8_0, q4_0)")
    threads = [int(t) for t in a.threads.split(",")]
    if max(threads) > os.cpu_count():
        sys.exit(f"paired-bench: --threads {a.threads}: this machine has {os.cpu_count()} cores")

    if a.cli:
        cli = a.cli.split()
    else:
        project = os.path.join(ROOT, "src", "ScratchGpt.Cli")
        run(["dotnet", "build", project, "-c", "Release", "-v", "q", "-nologo"])
        cli = ["dotnet", os.path.join(project, "bin", "Release", "net10.0", "ScratchGpt.Cli.dll")]

    work = a.work or tempfile.mkdtemp(prefix="paired-bench-")
    f32 = os.path.join(work, "gpt2-f32")
    if not os.path.exists(os.path.join(f32, "model.safetensors")):
        run(cli + ["init", "--config", "gpt2", "--out", f32])
    # q8_0, q4_0: ours quantizes at load, exactly as the GGUF writer does
    models = {"f32": (f32, None), "q8_0": (f32, "q8_0"), "q4_0": (f32, "q4_0")}
    if "f16" in dtypes:
        f16 = os.path.join(work, "gpt2-f16")
        if not os.path.exists(os.path.join(f16, "model.safetensors")):
            run(cli + ["convert", "--model", f32, "--out", f16, "--dtype", "f16"])
        models["f16"] = (f16, None)
    ggufs = {}
    for d in dtypes:
        ggufs[d] = os.path.join(work, f"gpt2-{d}.gguf")
        if not os.path.exists(ggufs[d]):
            run(cli + ["convert", "--model", f32, "--to", "gguf", "--dtype", d, "--out", ggufs[d]])

    cpu, cpu_kind = cpu_model(), cpu_id()
    pairs = []
    for rnd in range(1, a.rounds + 1):
        for t in threads:
            for d in dtypes:
                load = [round(x, 2) for x in os.getloadavg()]
                model, quantize = models[d]
                o = ours(cli, model, quantize, t, a.prompt_tokens, a.new_tokens, a.runs, a.isa, a.kv_cache)
                l = llama(bench, ggufs[d], t, a.prompt_tokens, a.new_tokens, a.runs, a.kv_cache)
                pair = {"cpu": cpu, "cpu_id": cpu_kind, "isa": a.isa, "kv_cache": a.kv_cache, "round": rnd,
                        "dtype": d, "threads": t,
                        "load_avg": load,
                        "ours": o, "llama_cpp": l,
                        "ratio": {"prefill": round(o["prefill"] / l["prefill"], 3),
                                  "decode": round(o["decode"] / l["decode"], 3)}}
                pairs.append(pair)
                print(json.dumps(pair), flush=True)

    for (d, t), ps in configurations(pairs):
        med = lambda side, k: statistics.median(p[side][k] for p in ps)
        print(json.dumps({
            "summary": True, "cpu": cpu, "cpu_id": cpu_kind, "isa": a.isa, "kv_cache": a.kv_cache, "dtype": d,
            "threads": t,
            "rounds": len(ps),
            "ours": {"prefill": med("ours", "prefill"), "decode": med("ours", "decode"),
                     "floor_decode": med("ours", "floor_decode")},
            "llama_cpp": {"prefill": med("llama_cpp", "prefill"), "decode": med("llama_cpp", "decode")},
            "ratio": {"prefill": statistics.median(p["ratio"]["prefill"] for p in ps),
                      "decode": statistics.median(p["ratio"]["decode"] for p in ps)},
            # each bench run against the bandwidth probed just before it (bench's fraction_of_floor), then the
            # median over pairs
            "decode_fraction_of_floor": med("ours", "fraction_of_floor"),
        }), flush=True)


if __name__ == "__main__":
    main()
