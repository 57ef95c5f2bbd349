#!/usr/bin/env bash
# Benchmark of the demo world (not a test): seconds per step and time to the first image of
# `vqclip generate "a red circle on a blue background" --preset demo`, and, with --fresh, the time from a fresh
# clone to that first image, set-up included.
# Usage: scripts/bench demo [--runs N] [--precision auto|f32|bf16] [--fresh [--pip-cache]]
#   --runs N      timed runs of the command (default 3); each is a whole process: start, model load, 100 steps, save
#   --fresh       git clone of HEAD into a temporary directory, then `scripts/vqclip generate ...` there, timed per
#                 set-up phase; pip's cache is bypassed (PIP_NO_CACHE_DIR=1, so torch is downloaded as on a new
#                 machine) unless --pip-cache; cargo's registry cache (~/.cargo) is used as it is
# Results go to stdout as markdown; the load average is printed too (other processes change every number).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
die() { echo "bench_demo: error: $*" >&2; exit 1; }
say() { echo "bench_demo: $*" >&2; }

runs=3; precision=auto; fresh=0; pip_cache=0
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    --fresh) fresh=1; shift ;;
    --pip-cache) pip_cache=1; shift ;;
    -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
prompt="a red circle on a blue background"
work="$root/target/bench-demo"
mkdir -p "$work"
now() { date +%s.%N; }

echo "## demo world: \`vqclip generate \"$prompt\" --preset demo\`"
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
echo

if [ "$fresh" = 1 ]; then
  clone="$(mktemp -d "${TMPDIR:-/tmp}/vqclip-fresh.XXXXXX")"
  say "fresh clone into $clone"
  git clone -q "$root" "$clone/vqclip"
  env_args=(); [ "$pip_cache" = 1 ] || env_args=(PIP_NO_CACHE_DIR=1)
  t0=$(now)
  env "${env_args[@]}" "$clone/vqclip/scripts/vqclip" generate "$prompt" --preset demo --seed 1 --out "$clone/run" \
    >"$clone/stdout" 2>"$clone/stderr" || { cat "$clone/stderr" >&2; die "the fresh-clone run failed"; }
  t1=$(now)
  echo "### from a fresh clone (pip cache: $([ "$pip_cache" = 1 ] && echo used || echo bypassed))"
  echo
  echo '```'
  grep -E '^setup: \[|^setup: set-up finished|^done:' "$clone/stderr" || true
  echo '```'
  echo
  printf 'fresh clone to first image: %.0f s (set-up included)\n\n' "$(awk "BEGIN{print $t1 - $t0}")"
  rm -rf "$clone"
fi

bin="$root/target/release/vqclip"
[ -x "$bin" ] || die "build first: scripts/setup"
export VQCLIP_WEIGHTS="$root/weights"
walls=(); rates=()
for i in $(seq 1 "$runs"); do
  out="$work/run-$i"
  rm -rf "$out"
  t0=$(now)
  "$bin" generate "$prompt" --preset demo --seed 1 --precision "$precision" --out "$out" --quiet >/dev/null
  t1=$(now)
  walls+=("$(awk "BEGIN{print $t1 - $t0}")")
  # Per-step seconds from log.jsonl ("seconds" is cumulative); the first 5 steps are warm-up.
  rates+=("$(python3 - "$out/log.jsonl" <<'EOF'
import json, sys
s = [json.loads(l)["seconds"] for l in open(sys.argv[1])]
d = [b - a for a, b in zip(s[4:], s[5:])]
d.sort()
print(d[len(d) // 2])
EOF
)")
done
med() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "### this machine, precision $precision, $runs runs (median; min-max)"
echo
echo "| figure | median | min | max |"
echo "|---|---|---|---|"
printf '| time to the first image (process start to final.png, 100 steps) | %.2f s | %.2f s | %.2f s |\n' \
  "$(med "${walls[@]}")" "$(printf '%s\n' "${walls[@]}" | sort -g | head -1)" "$(printf '%s\n' "${walls[@]}" | sort -g | tail -1)"
printf '| seconds per step (median step after 5) | %.3f s | %.3f s | %.3f s |\n' \
  "$(med "${rates[@]}")" "$(printf '%s\n' "${rates[@]}" | sort -g | head -1)" "$(printf '%s\n' "${rates[@]}" | sort -g | tail -1)"
echo
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
