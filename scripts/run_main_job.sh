#!/usr/bin/env bash
# The main job: convert the default model (Yolo-Fastest-XL, VOC) and detect on the default video,
# writing an annotated video and per-frame JSON Lines into out/.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${MPDET_DATA_DIR:-../shared}"
mkdir -p out
./build/bin/mpdet convert "$DATA/models/yolo-fastest-xl-voc/yolo-fastest-xl.cfg" \
  "$DATA/models/yolo-fastest-xl-voc/yolo-fastest-xl.weights" -o out/yolo-fastest-xl.mpdet
./build/bin/mpdet detect out/yolo-fastest-xl.mpdet "$DATA/data/videos/pedestrians.mp4" \
  -o out/pedestrians-detected.mp4 --json out/pedestrians-detected.jsonl
