#!/usr/bin/env bash
# End-to-end test of the mpdet command-line tool on the shared data: every subcommand runs and
# writes what it promises, and bad input gives a clear error, a non-zero exit and no output file.
# Usage: cli_test.sh <path to mpdet> <data dir> <path to sample_video_detect>
set -uo pipefail
MPDET="$1"
DATA="$2"
SAMPLE="$3"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
check() {  # check <description> <command...>: the command must succeed
  local what="$1"; shift
  if ! "$@" >"$WORK/out.txt" 2>&1; then echo "FAIL: $what"; cat "$WORK/out.txt"; failures=$((failures + 1)); fi
}
check_error() {  # check_error <description> <expected message fragment> <command...>: must fail with the message
  local what="$1" fragment="$2"; shift 2
  if "$@" >"$WORK/out.txt" 2>&1; then echo "FAIL: $what succeeded"; failures=$((failures + 1)); return; fi
  if ! grep -q -- "$fragment" "$WORK/out.txt"; then
    echo "FAIL: $what: message lacks '$fragment':"; cat "$WORK/out.txt"; failures=$((failures + 1))
  fi
}

M="$DATA/models/yolo-fastest-voc"
check "convert" "$MPDET" convert "$M/yolo-fastest.cfg" "$M/yolo-fastest.weights" -o "$WORK/m.mpdet"
check "info" "$MPDET" info "$WORK/m.mpdet"
grep -q "MACs     0.1186 G" "$WORK/out.txt" || { echo "FAIL: info does not show 0.1186 GMAC"; failures=$((failures + 1)); }

check "eval on 40 dev images" "$MPDET" eval "$WORK/m.mpdet" --set dev --limit 40 --threads 2 \
  --report "$WORK/report.json" --dets-out "$WORK/dets.json" --results-dir "$WORK/results"
python3 - "$WORK" <<'PY' || failures=$((failures + 1))
import json, sys, os
w = sys.argv[1]
r = json.load(open(f"{w}/report.json"))
assert r["images"] == 40 and 0.3 < r["map_voc07"] <= 1 and 0.3 < r["map_voc12"] <= 1, r
assert len(r["per_class"]) == 20 and r["backend"] == "ref"
d = json.load(open(f"{w}/dets.json"))
assert d and set(d[0]) == {"image_id", "class", "score", "bbox"} and len(d[0]["bbox"]) == 4, d[:1]
assert all(len(x["image_id"]) == 6 for x in d)
assert len(os.listdir(f"{w}/results")) == 20
print("eval outputs ok")
PY

check "detect on a video" "$MPDET" detect "$WORK/m.mpdet" "$DATA/data/videos/taxi.mp4" -o "$WORK/taxi.mp4" --json "$WORK/taxi.jsonl"
[ -s "$WORK/taxi.mp4" ] || { echo "FAIL: no video written"; failures=$((failures + 1)); }
[ "$(wc -l <"$WORK/taxi.jsonl")" -eq 41 ] || { echo "FAIL: expected 41 JSON lines"; failures=$((failures + 1)); }
check "detect on an image" "$MPDET" detect "$WORK/m.mpdet" "$DATA/data/VOCdevkit/VOC2007/JPEGImages/000005.jpg" -o "$WORK/d.jpg"
check "bench --json" "$MPDET" bench "$WORK/m.mpdet" --runs 3 --warmup 1 --json
python3 -c "
import json,sys; b=json.load(open('$WORK/out.txt'))
assert b['runs']==3 and b['network_ms']['min']<=b['network_ms']['median']<=b['network_ms']['max'], b
assert set(b['preprocess_ms'])=={'median','min','max'}" || { echo "FAIL: bench JSON"; failures=$((failures + 1)); }

# Quantization: a small calibration, then the quantized model through info, eval and detect.
check "quantize (multipoint w4)" "$MPDET" quantize "$WORK/m.mpdet" --method multipoint --wbits 4 --budget 1.25 \
  --limit 6 -o "$WORK/q.mpdet" --report "$WORK/q.json"
python3 - "$WORK" <<'PY' || failures=$((failures + 1))
import json, sys
r = json.load(open(f"{sys.argv[1]}/q.json"))
assert 1.2 < r["points_per_weight"] <= 1.25 + 1e-9 and r["model_bytes"] > 0, r
assert all({"points", "output_sqnr_db", "seconds"} <= set(l) for l in r["layers"]), r["layers"][:1]
print("quantize report ok")
PY
# Calibration cache: written once, then read back (same model file), and refused when corrupt or stale.
check "quantize writing a calibration cache" "$MPDET" quantize "$WORK/m.mpdet" --method naive --wbits 8 \
  --limit 3 --threads 2 --calib-cache "$WORK/c.calib" -o "$WORK/q8a.mpdet"
check "quantize reading the calibration cache" "$MPDET" quantize "$WORK/m.mpdet" --method naive --wbits 8 \
  --limit 3 --calib-cache "$WORK/c.calib" -o "$WORK/q8b.mpdet"
grep -q "read from the cache" "$WORK/out.txt" || { echo "FAIL: cache not used"; failures=$((failures + 1)); }
cmp -s "$WORK/q8a.mpdet" "$WORK/q8b.mpdet" || { echo "FAIL: cached quantization differs"; failures=$((failures + 1)); }
check_error "stale calibration cache" "other calibration images" "$MPDET" quantize "$WORK/m.mpdet" --method naive \
  --wbits 8 --limit 2 --calib-cache "$WORK/c.calib" -o "$WORK/q8c.mpdet"
printf 'garbage' | dd of="$WORK/c.calib" bs=1 seek=100 conv=notrunc status=none
check_error "corrupt calibration cache" "checksum" "$MPDET" quantize "$WORK/m.mpdet" --method naive --wbits 8 \
  --limit 3 --calib-cache "$WORK/c.calib" -o "$WORK/q8c.mpdet"
check "info on a quantized model" "$MPDET" info "$WORK/q.mpdet" --brief
grep -q "points per weight" "$WORK/out.txt" || { echo "FAIL: info lacks the points summary"; failures=$((failures + 1)); }
check "eval on a quantized model (ref)" "$MPDET" eval "$WORK/q.mpdet" --set dev --limit 10 --backend ref \
  --dets-out "$WORK/q-ref.json"
check "eval on a quantized model (cpu)" "$MPDET" eval "$WORK/q.mpdet" --set dev --limit 10 --backend cpu \
  --dets-out "$WORK/q-cpu.json"
cmp -s "$WORK/q-ref.json" "$WORK/q-cpu.json" || { echo "FAIL: cpu and ref backends detect differently"; failures=$((failures + 1)); }
check "detect with a quantized model" "$MPDET" detect "$WORK/q.mpdet" "$DATA/data/VOCdevkit/VOC2007/JPEGImages/000005.jpg" -o "$WORK/q.jpg"
check_error "quantizing a quantized model" "already quantized" "$MPDET" quantize "$WORK/q.mpdet" --limit 2 -o "$WORK/qq.mpdet"
[ ! -e "$WORK/qq.mpdet" ] || { echo "FAIL: partial quantized model written"; failures=$((failures + 1)); }
check "devices" "$MPDET" devices
if grep -q -- "--device 0" "$WORK/out.txt"; then
  check "eval on a quantized model (vulkan)" "$MPDET" eval "$WORK/q.mpdet" --set dev --limit 10 --backend vulkan \
    --dets-out "$WORK/q-vulkan.json"
  cmp -s "$WORK/q-ref.json" "$WORK/q-vulkan.json" || { echo "FAIL: vulkan and ref backends detect differently"; failures=$((failures + 1)); }
  check_error "vulkan device out of range" "requested" "$MPDET" bench "$WORK/q.mpdet" --backend vulkan --device 42 --runs 1
  check_error "vulkan on a float model" "quantized models only" "$MPDET" bench "$WORK/m.mpdet" --backend vulkan --runs 1
else
  echo "note: no Vulkan device, vulkan CLI checks skipped"
fi
check "vulkan unavailable, --fallback-cpu" "$MPDET" bench "$WORK/q.mpdet" --backend vulkan --device 42 --fallback-cpu --runs 1
grep -q "running on the CPU backend" "$WORK/out.txt" || { echo "FAIL: no fallback note"; failures=$((failures + 1)); }

# The embedding sample: public API only, frames straight from VideoCapture.
check "sample on a video" "$SAMPLE" "$WORK/q.mpdet" "$DATA/data/videos/pedestrians.mp4" 3
[ "$(grep -c '^frame ' "$WORK/out.txt")" -eq 3 ] || { echo "FAIL: sample did not report 3 frames"; failures=$((failures + 1)); }
check_error "sample on an unreadable video" "cannot open video source" "$SAMPLE" "$WORK/m.mpdet" "$WORK/absent.mp4"

# Bad input: clear errors, non-zero exit, nothing half-written.
check_error "missing model" "cannot open" "$MPDET" info "$WORK/absent.mpdet"
head -c 1000 "$WORK/m.mpdet" >"$WORK/truncated.mpdet"
check_error "truncated model" "truncated" "$MPDET" info "$WORK/truncated.mpdet"
cp "$M/yolo-fastest.cfg" "$WORK/bad.cfg" && echo "[gru]" >>"$WORK/bad.cfg"
check_error "unknown section" "unsupported section" "$MPDET" convert "$WORK/bad.cfg" "$M/yolo-fastest.weights" -o "$WORK/bad.mpdet"
[ ! -e "$WORK/bad.mpdet" ] || { echo "FAIL: partial model written"; failures=$((failures + 1)); }
head -c 100000 "$M/yolo-fastest.weights" >"$WORK/short.weights"
check_error "truncated weights" "truncated" "$MPDET" convert "$M/yolo-fastest.cfg" "$WORK/short.weights" -o "$WORK/bad.mpdet"
echo "not a video" >"$WORK/broken.mp4"
check_error "unreadable video" "cannot open video" "$MPDET" detect "$WORK/m.mpdet" "$WORK/broken.mp4" -o "$WORK/o.mp4"
[ -z "$(ls "$WORK" | grep -E '^o\.mp4|tmp-')" ] || { echo "FAIL: partial output left behind"; ls "$WORK"; failures=$((failures + 1)); }
check_error "missing image set" "nope.txt" "$MPDET" eval "$WORK/m.mpdet" --set nope
check_error "bad threshold" "conf" "$MPDET" eval "$WORK/m.mpdet" --conf 2

if [ "$failures" -ne 0 ]; then echo "$failures CLI check(s) failed"; exit 1; fi
echo "all CLI checks passed"
