#!/usr/bin/env bash
# The CPU-backend benchmark of issue 4 in one command:
#   bench/run_cpu_bench.sh [RUNS]
# For the three VOC YOLO models, at W8 (naive) and W4 multipoint (1.25 points/weight), with 1 and
# 2 threads: `mpdet bench --backend cpu` next to OpenCV dnn's float network on the same input,
# interleaved in the same run. Prints a markdown table of medians and the ratio to OpenCV, and
# leaves every bench JSON in out/bench/. Models are converted and quantized into out/ when missing
# (calibration on the VOC2007 `calib` set runs once per model and is cached in out/NAME.calib).
set -euo pipefail
cd "$(dirname "$0")/.."
runs="${1:-30}"
data="${MPDET_DATA_DIR:-$(cd .. && pwd)/shared}"
mpdet=build/bin/mpdet
[ -x "$mpdet" ] || { cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build; }
mkdir -p out/bench

# name, Darknet directory, cfg and weights file names
models=(
  "yolo-fastest-xl yolo-fastest-xl-voc yolo-fastest-xl.cfg yolo-fastest-xl.weights"
  "yolo-fastest yolo-fastest-voc yolo-fastest.cfg yolo-fastest.weights"
  "yolo-nano mobilenetv2-yolov3-nano-voc MobileNetV2-YOLOv3-Nano-voc.cfg MobileNetV2-YOLOv3-Nano-voc.weights"
)
variants=("w8:--method naive --wbits 8" "w4mp125:--method multipoint --wbits 4 --budget 1.25")

echo "| model | weights | threads | mpdet network ms | OpenCV dnn float ms | ratio | mpdet end-to-end ms |"
echo "|---|---|---|---|---|---|---|"
for entry in "${models[@]}"; do
  read -r name dir cfg weights <<<"$entry"
  cfg="$data/models/$dir/$cfg"
  weights="$data/models/$dir/$weights"
  [ -f "out/$name.mpdet" ] || "$mpdet" convert "$cfg" "$weights" -o "out/$name.mpdet" >&2
  for variant in "${variants[@]}"; do
    tag="${variant%%:*}"
    # shellcheck disable=SC2086  # the flags are meant to split
    [ -f "out/$name-$tag.mpdet" ] || "$mpdet" quantize "out/$name.mpdet" ${variant#*:} \
      --threads 2 --calib-cache "out/$name.calib" -o "out/$name-$tag.mpdet" \
      --report "out/q-$name-$tag.json" >&2
    for threads in 1 2; do
      json="out/bench/$name-$tag-t$threads.json"
      "$mpdet" bench "out/$name-$tag.mpdet" --backend cpu --threads "$threads" --runs "$runs" \
        --peer-darknet "$cfg" "$weights" --json >"$json"
      python3 - "$json" "$name" "$tag" "$threads" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
net, peer = r["network_ms"]["median"], r["opencv_dnn_float_network_ms"]["median"]
print(f"| {sys.argv[2]} | {sys.argv[3]} | {sys.argv[4]} | {net:.2f} | {peer:.2f} | "
      f"{net / peer:.2f} | {r['end_to_end_ms']['median']:.2f} |")
PY
    done
  done
done
