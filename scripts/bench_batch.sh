#!/usr/bin/env bash
# `scripts/bench batch`: jobs per hour of `vqclip batch` with 1, 2 and 3 shards running at once over the same jobs
# (tiny CLIP, fast_pixel, 48x32, 20 steps), and the per-job cost of claims: a pass over a finished batch (status
# check per job) and the claim + release of a job that is skipped. On a 2-core machine 3 shards oversubscribe the
# cores: read the scaling and the overhead, not absolute speed. Usage: scripts/bench batch [--jobs N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
n_jobs=12
while [ $# -gt 0 ]; do
  case "$1" in
    --jobs) n_jobs="$2"; shift 2 ;;
    *) echo "bench_batch: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
bin="$root/target/release/vqclip"
[ -x "$bin" ] || { echo "bench_batch: build first (scripts/setup)" >&2; exit 1; }
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
{
  printf '[defaults]\ndrawer = "fast_pixel"\nclip = ["%s"]\nsize = "48x32"\ncutouts = 4\nsteps = 20\nsave-every = 5\n[grid]\nprompts = [' \
    "$root/tests/fixtures/clip_tiny.pt"
  for i in $(seq 1 "$n_jobs"); do printf '"prompt number %d",' "$i"; done
  printf ']\n'
} > "$work/jobs.toml"
now() { date +%s.%N; }
rows=()
for shards in 1 2 3; do
  out="$work/root-$shards"
  t0=$(now)
  pids=()
  threads=$(( $(nproc) / shards )); [ "$threads" -ge 1 ] || threads=1
  for i in $(seq 1 "$shards"); do
    OMP_NUM_THREADS=$threads "$bin" batch "$work/jobs.toml" --out "$out" --device cpu --quiet --shard "$i/$shards" >/dev/null 2>&1 & pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p"; done
  t=$(echo "$(now) - $t0" | bc -l)
  "$bin" batch status "$out" >/dev/null || { echo "bench_batch: not all jobs done with $shards shards" >&2; exit 1; }
  rows+=("$shards $t")
done
# a pass over a finished batch: loading and resolving the jobs + one state check per job
t0=$(now); "$bin" batch "$work/jobs.toml" --out "$work/root-1" --device cpu --quiet >/dev/null 2>&1; t_done=$(echo "$(now) - $t0" | bc -l)
t0=$(now); "$bin" batch "$work/jobs.toml" --out "$work/root-1" --device cpu --quiet --dry-run >/dev/null 2>&1; t_dry=$(echo "$(now) - $t0" | bc -l)
base=$(echo "${rows[0]}" | cut -d' ' -f2)
printf '\n## vqclip batch benchmark\n\n- machine: %s, %s cores; %s jobs (tiny CLIP, fast_pixel 48x32, 20 steps)\n\n' \
  "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')" "$(nproc)" "$n_jobs"
printf '| shards at once (threads each: cores / shards) | wall | jobs per hour | speed-up over 1 |\n|---|---|---|---|\n'
for r in "${rows[@]}"; do
  s=${r%% *}; t=${r#* }
  printf '| %s | %.1f s | %.0f | %.2fx |\n' "$s" "$t" "$(echo "$n_jobs * 3600 / $t" | bc -l)" "$(echo "$base / $t" | bc -l)"
done
printf '\n- a pass over the finished batch (start-up, resolving %s jobs, one state check each): %.2f s; the same with --dry-run (no state checks): %.2f s; so %.1f ms of claim/state work per job\n' \
  "$n_jobs" "$t_done" "$t_dry" "$(echo "($t_done - $t_dry) * 1000 / $n_jobs" | bc -l)"
