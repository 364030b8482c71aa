#!/usr/bin/env bash
# The CUDA checks and benchmarks, for a session that is lent a GPU machine (the workplace's `device` tool).
# That machine has CUDA but no .NET, and what travels there is capped at 64 MiB, the repository included, so:
#
#   here:   bash scripts/gpu-session.sh pack          # .gpu/ = the .NET runtime (xz) + the CLI's DLLs (~29 MB)
#   there:  device run, carry [".gpu"], command "bash scripts/gpu-session.sh run"
#
# `run` writes its logs and JSON under $OUT: the kernel table on CUDA, the default model's greedy and beam text
# on the CPU and on CUDA (they must be equal), bench rows for gpt2 f32/f16 (batch 1 and 8, 128 and 896 cached positions) and gpt2-xl f16, a short training run.
set -euo pipefail
cd "$(dirname "$0")/.."

pack() {
  local dotnet_root; dotnet_root=$(dirname "$(readlink -f "$(command -v dotnet)")")
  local runtime; runtime=$(ls -d "$dotnet_root"/shared/Microsoft.NETCore.App/* | sort -V | tail -1)
  rm -rf .gpu && mkdir -p .gpu/app/weights
  grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
  dotnet build -c Release src/ScratchGpt.Cli >/dev/null
  local bin=src/ScratchGpt.Cli/bin/Release/net10.0
  cp "$bin"/*.dll "$bin"/*.json .gpu/app/
  cp weights/vocab.json weights/merges.txt .gpu/app/weights/
  (cd "$dotnet_root" && tar cf - dotnet host "shared/Microsoft.NETCore.App/$(basename "$runtime")") | xz -T0 -6 > .gpu/dotnet.tar.xz
  du -sh .gpu
}

run() {
  mkdir -p /tmp/dotnet && tar xJf .gpu/dotnet.tar.xz -C /tmp/dotnet
  export DOTNET_ROOT=/tmp/dotnet PATH=/tmp/dotnet:$PATH DOTNET_CLI_TELEMETRY_OPTOUT=1
  # ILGPU needs only the driver (libcuda.so.1); it compiles the C# kernels to PTX itself.
  local out=${OUT:-/tmp/gpu-out}; mkdir -p "$out"
  sg() { dotnet .gpu/app/ScratchGpt.Cli.dll "$@"; }
  # Each step runs even if one before it failed; failures are listed in $out/failures.txt.
  step() { local name=$1; shift; echo "== $name"; "$@" || echo "$name (exit $?)" >> "$out/failures.txt"; }
  step devices sg devices
  step kernels-cuda bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll kernels test --device cuda > "$0/kernels-cuda.txt" 2>&1' "$out"
  step ptx bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll kernels compile --target ptx --arch sm_90 --out "$0/ptx"' "$out"
  for d in cpu cuda; do
    step "greedy-$d" bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll generate --model weights/default --device "$1" --prompt "ROMEO:" --max-new-tokens 40 --json > "$0/greedy-$1.json"' "$out" "$d"
    step "beam-$d" bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll generate --model weights/default --device "$1" --prompt "ROMEO:" --max-new-tokens 40 --num-beams 5 --no-repeat-ngram-size 2 --json > "$0/beam-$1.json"' "$out" "$d"
  done
  step init sg init --config gpt2 --out /tmp/gpt2-f32
  step init-f16 sg init --config gpt2 --dtype f16 --out /tmp/gpt2-f16
  step init-xl sg init --config gpt2-xl --dtype f16 --out /tmp/gpt2xl-f16
  for m in gpt2-f32 gpt2-f16; do
    step "bench-$m" bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll bench --model /tmp/$1 --device cuda --prompt-tokens 128 --new-tokens 128 --runs 3 --profile --json > "$0/bench-$1.json"' "$out" "$m"
  done
  step bench-xl bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll bench --model /tmp/gpt2xl-f16 --device cuda --prompt-tokens 128 --new-tokens 64 --runs 3 --json > "$0/bench-gpt2xl-f16.json"' "$out"
  step bench-batch8 bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll bench --model /tmp/gpt2-f16 --device cuda --prompt-tokens 128 --new-tokens 64 --runs 3 --batch 8 --json > "$0/bench-gpt2-f16-batch8.json"' "$out"
  step bench-long bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll bench --model /tmp/gpt2-f16 --device cuda --prompt-tokens 896 --new-tokens 64 --runs 3 --profile --json > "$0/bench-gpt2-f16-896.json"' "$out"
  step bench-prefill bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll bench --model /tmp/gpt2-f32 --device cuda --prompt-tokens 1000 --new-tokens 2 --runs 3 --json > "$0/bench-prefill-1000.json"' "$out"
  for i in $(seq 40); do cat README.md; done > /tmp/train-text.txt
  step train-cuda bash -c 'dotnet .gpu/app/ScratchGpt.Cli.dll train --config gpt2 --n-layer 4 --n-head 4 --n-embd 256 --n-positions 256 --data /tmp/train-text.txt --block-size 256 --batch-size 16 --max-steps 20 --eval-split 0.1 --device cuda --out /tmp/train-cuda > "$0/train-cuda.txt" 2>&1' "$out"
  cmp <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompts"][0]["sequences"][0]["text"])' "$out/greedy-cpu.json") \
      <(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["prompts"][0]["sequences"][0]["text"])' "$out/greedy-cuda.json") \
    && echo "greedy: same text on cpu and cuda" | tee -a "$out/summary.txt" || echo "greedy: cpu and cuda DIFFER" | tee -a "$out/summary.txt"
  cat "$out/failures.txt" 2>/dev/null || echo "no step failed"
}

case "${1:-}" in
  pack) pack ;;
  run) run ;;
  *) echo "usage: scripts/gpu-session.sh pack|run" >&2; exit 2 ;;
esac
