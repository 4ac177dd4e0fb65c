#!/usr/bin/env bash
# The main job: the default model (Yolo-Fastest-XL, VOC) converted from Darknet, quantized to
# W4A8 multipoint (1.25 points per weight, calibrated on the VOC2007 `calib` images; the
# statistics are cached in out/ so a second run skips calibration), then run on the default video
# with the fast CPU backend, writing an annotated video and per-frame JSON Lines into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${MPDET_DATA_DIR:-../shared}"
MODEL="$DATA/models/yolo-fastest-xl-voc"
mkdir -p out
./build/bin/mpdet convert "$MODEL/yolo-fastest-xl.cfg" "$MODEL/yolo-fastest-xl.weights" \
  -o out/yolo-fastest-xl.mpdet
./build/bin/mpdet quantize out/yolo-fastest-xl.mpdet --method multipoint --wbits 4 --budget 1.25 \
  --threads 2 --calib-cache out/yolo-fastest-xl.calib -o out/yolo-fastest-xl-w4mp.mpdet \
  --report out/yolo-fastest-xl-w4mp.quantize.json
./build/bin/mpdet detect out/yolo-fastest-xl-w4mp.mpdet "$DATA/data/videos/pedestrians.mp4" \
  --backend cpu -o out/pedestrians-detected.mp4 --json out/pedestrians-detected.jsonl
