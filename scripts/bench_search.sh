#!/usr/bin/env bash
# Benchmark of `vqclip search` (not a test): indexing speed in images per second at ViT-B/32 size (or any CLIP
# given by $VQCLIP_BENCH_CLIP, e.g. target/bench-weights/RN50.pt), side by side with the torch reference
# (benches/embed_reference.py: clip.load + clip's preprocess + encode_image on the same files), and the time of a
# repeated search over an already indexed folder.
# Usage: scripts/bench_search.sh [--images N] [--runs R] [--device cpu|cuda] [--batch B] [--precision f32|bf16|auto]
#   Weights: $VQCLIP_BENCH_CLIP, else target/bench-weights/ViT-B-32.pt (full-size random weights in OpenAI's
#   TorchScript format, written by tests/fixtures/make_fixtures.py --full when absent; about 2 minutes).
#   Images: N (default 1000) generated 320x240 JPEGs in target/bench-search/images-N (kept between runs).
# Method: run 1 indexes from scratch (model load + scan + decode + encode + write the index + query); runs 2..R
# reuse the index (model load + scan + index read + query). Indexing speed = N / (run 1 - median of runs 2..R),
# so process start-up and model loading are not counted as indexing. `vqclip embed --text` (start-up, CLIP load,
# one text) shows how much of a repeated search is the fixed cost. Results go to stdout as markdown; the load
# average is printed too, since other processes on the machine change every number here.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
die() { echo "bench_search: error: $*" >&2; exit 1; }
say() { echo "bench_search: $*" >&2; }

n_images=1000; runs=5; device=cpu; batch=32; precision=f32
while [ $# -gt 0 ]; do
  case "$1" in
    --images) n_images="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --batch) batch="$2"; shift 2 ;;
    --precision) precision="$2"; shift 2 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
[ "$runs" -ge 2 ] || die "--runs must be at least 2"

py="$root/.venv/bin/python"
[ -x "$py" ] || die "no project venv; run scripts/setup"
export VIRTUAL_ENV="$root/.venv" PATH="$root/.venv/bin:$PATH" LIBTORCH_USE_PYTORCH=1
torch_lib="$("$py" -c 'import os, torch; print(os.path.join(os.path.dirname(torch.__file__), "lib"))')"
export LD_LIBRARY_PATH="$torch_lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

bin="$root/target/release/vqclip"
if [ ! -x "$bin" ]; then say "building vqclip"; cargo build --release --quiet; fi

clip="${VQCLIP_BENCH_CLIP:-$root/target/bench-weights/ViT-B-32.pt}"
if [ ! -f "$clip" ]; then
  wdir="$(dirname "$clip")"
  say "writing full-size random weights into $wdir (make_fixtures.py --full; about 2 minutes)"
  mkdir -p "$wdir"
  "$py" tests/fixtures/make_fixtures.py --full "$wdir.tmp" || die "make_fixtures.py --full failed"
  for f in "$wdir.tmp"/*; do mv -f "$f" "$wdir/"; done
  rmdir "$wdir.tmp"
  [ -f "$clip" ] || die "$clip was not written"
fi

images="$root/target/bench-search/images-$n_images"
have=$( (find "$images" -name '*.jpg' 2>/dev/null || true) | wc -l)
if [ "$have" -ne "$n_images" ]; then
  say "generating $n_images images in $images"
  rm -rf "$images"
  "$py" - "$images" "$n_images" <<'EOF'
import os, sys
import numpy as np
from PIL import Image
out, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(0)
yy, xx = np.mgrid[0:240, 0:320] / 240.0
for i in range(n):
    sub = os.path.join(out, f"{i // 100:02d}")   # 100 per folder, so the walk recurses
    os.makedirs(sub, exist_ok=True)
    f = rng.uniform(1, 12, size=(3, 2))
    ph = rng.uniform(0, 6.3, size=3)
    rgb = np.stack([np.sin(f[c, 0] * xx + f[c, 1] * yy + ph[c]) for c in range(3)], -1)
    rgb = (rgb * 0.5 + 0.5) * 255 + rng.normal(0, 8, size=(240, 320, 3))
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(os.path.join(sub, f"img{i:05d}.jpg"), quality=90)
EOF
fi

now() { date +%s.%N; }
run_search() {  # prints the wall time; stderr of vqclip goes to $log
  local t0 t1
  t0=$(now)
  "$bin" search "$images" --query "a photo of a red car" --clip "$clip" --device "$device" --batch "$batch" \
    --precision "$precision" --top 5 --json >/dev/null 2>"$log" || { cat "$log" >&2; die "vqclip search failed"; }
  t1=$(now)
  echo "$t1 - $t0" | bc -l
}
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

load="$(cut -d' ' -f1-3 /proc/loadavg)"
rm -rf "$images/.vqclip-index"
say "run 1: indexing $n_images images from scratch on $device"
t_index=$(run_search)
grep '^indexed:' "$log" >&2
grep -q "^indexed: $n_images encoded, 0 reused" "$log" || die "run 1 did not encode every image: $(cat "$log")"
repeats=()
for ((r = 2; r <= runs; r++)); do
  t=$(run_search)
  grep -q "^indexed: 0 encoded, $n_images reused" "$log" || die "run $r re-encoded images: $(cat "$log")"
  repeats+=("$t")
done
median=$(printf '%s\n' "${repeats[@]}" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}')
t0=$(now); "$bin" --help >/dev/null; t_start=$(echo "$(now) - $t0" | bc -l)
# what every search pays before looking at the folder: start-up, loading CLIP, encoding the query
t0=$(now)
"$bin" embed --text "a photo of a red car" --clip "$clip" --device "$device" --precision "$precision" >/dev/null 2>"$log" \
  || { cat "$log" >&2; die "vqclip embed failed"; }
t_load=$(echo "$(now) - $t0" | bc -l)
rate=$(echo "$n_images / ($t_index - $median)" | bc -l)
say "torch reference: encoding the same $n_images images"
ref_line=$("$py" "$root/benches/embed_reference.py" "$images" --clip "$clip" --device "$device" --batch "$batch" \
  --threads "$(nproc)" | grep '^EMBEDREF ' | cut -c10-) || die "benches/embed_reference.py failed"
ref_rate=$(echo "$ref_line" | "$py" -c 'import json, sys; print(json.load(sys.stdin)["images_per_s"])')

cpu="$(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2 | sed 's/^ *//' || echo unknown)"
printf '\n## vqclip search benchmark\n\n'
printf -- '- machine: %s, %s cores; device %s; batch %s; precision %s; CLIP %s (%s bytes)\n' \
  "$cpu" "$(nproc)" "$device" "$batch" "$precision" "$(basename "$clip")" "$(stat -c %s "$clip")"
printf -- '- load average before the runs: %s\n' "$load"
printf -- '- folder: %s generated 320x240 JPEGs in %s subfolders\n\n' "$n_images" "$(( (n_images + 99) / 100 ))"
printf '| measure | value |\n|---|---|\n'
printf '| first search, indexing everything (wall) | %.2f s |\n' "$t_index"
printf '| repeated search over the indexed folder (median of %d, wall) | %.2f s |\n' "$((runs - 1))" "$median"
printf '| of which start-up + CLIP load + query (`vqclip embed --text`) | %.2f s |\n' "$t_load"
printf '| of which process start-up alone (`vqclip --help`) | %.2f s |\n' "$t_start"
printf '| indexing speed, N / (first - repeated) | %.1f images/s |\n' "$rate"
printf '| torch reference (clip.load + preprocess + encode_image, load excluded) | %.1f images/s |\n' "$ref_rate"
printf '| vqclip / reference | %.2fx |\n' "$(echo "$rate / $ref_rate" | bc -l)"
