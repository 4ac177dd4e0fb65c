#!/usr/bin/env bash
# Regenerates docs/quantization_tradeoff.md and docs/quantization_tradeoff.png: VOC07 mAP on the
# full VOC2007 `dev` set (2281 images) against the multipoint budget (points per weight,
# MAC-weighted) for Yolo-Fastest-XL and Yolo-Fastest, naive vs multipoint, at W4 and W3 (plus W8
# naive, W2 and the float models for reference). Each model is calibrated once (a calibration cache
# in the work directory); every quantized model is evaluated with the bit-exact CPU backend.
#
#   scripts/quant_tradeoff.sh                 # everything, from scratch (about an hour on 2 busy cores)
#   RESUME=1 scripts/quant_tradeoff.sh        # keep finished points (same binary and settings!)
#   LIMIT=200 OUT=out/tradeoff-quick scripts/quant_tradeoff.sh   # quick look, first 200 images
#
# Settings (environment): MPDET_BIN (default build/bin/mpdet), OUT (work directory, default
# out/tradeoff), THREADS (default 2), BUDGETS, BITS, W2_BUDGETS, MODELS, LIMIT, DOCS (default docs),
# PYTHON (default /usr/bin/python3, Debian's, with python3-matplotlib).
set -euo pipefail
cd "$(dirname "$0")/.."
MPDET=${MPDET_BIN:-build/bin/mpdet}
DATA=${MPDET_DATA_DIR:-../shared}
OUT=${OUT:-out/tradeoff}
THREADS=${THREADS:-2}
BUDGETS=${BUDGETS:-"1.0 1.25 1.5 1.75 2.0"}
BITS=${BITS:-"4 3"}
W2_BUDGETS=${W2_BUDGETS:-"1.5 2.0"}
MODELS=${MODELS:-"yolo-fastest-xl yolo-fastest"}
LIMIT=${LIMIT:-}
DOCS=${DOCS:-docs}
# Debian's interpreter, where python3-matplotlib lives (a python3 earlier on PATH may lack it).
PYTHON=${PYTHON:-/usr/bin/python3}

[ -x "$MPDET" ] || { echo "no mpdet binary at $MPDET (build first, or set MPDET_BIN)" >&2; exit 1; }
"$PYTHON" -c 'import matplotlib' 2>/dev/null ||
  { echo "python3-matplotlib is missing (scripts/install_deps.sh installs it)" >&2; exit 1; }
if [ -z "${RESUME:-}" ]; then rm -rf "$OUT"; fi
mkdir -p "$OUT" "$DOCS"
eval_args=(--set dev --backend cpu --threads "$THREADS")
[ -n "$LIMIT" ] && eval_args+=(--limit "$LIMIT")

# point MODEL TAG QUANTIZE_ARGS...: quantize with the model's calibration cache, then evaluate.
point() {
  local model=$1 tag=$2
  shift 2
  local base="$OUT/$model-$tag"
  if [ -f "$base.eval.json" ]; then return; fi
  echo "== $model $tag: quantize $*" >&2
  "$MPDET" quantize "out/$model.mpdet" "$@" --calib-cache "$OUT/$model.calib" \
    --threads "$THREADS" -o "$base.mpdet" --report "$base.q.json" >"$base.quantize.log"
  "$MPDET" eval "$base.mpdet" "${eval_args[@]}" --report "$base.eval.json.tmp" | tail -n 1 >&2
  mv "$base.eval.json.tmp" "$base.eval.json"
}

for model in $MODELS; do
  case $model in
    yolo-fastest-xl) src="$DATA/models/yolo-fastest-xl-voc/yolo-fastest-xl" ;;
    yolo-fastest) src="$DATA/models/yolo-fastest-voc/yolo-fastest" ;;
    *) echo "unknown model $model" >&2; exit 1 ;;
  esac
  [ -f "out/$model.mpdet" ] || "$MPDET" convert "$src.cfg" "$src.weights" -o "out/$model.mpdet"
  if [ ! -f "$OUT/$model-float.eval.json" ]; then
    echo "== $model float (reference backend)" >&2
    "$MPDET" eval "out/$model.mpdet" --set dev --backend ref --threads "$THREADS" \
      ${LIMIT:+--limit "$LIMIT"} --report "$OUT/$model-float.eval.json.tmp" | tail -n 1 >&2
    mv "$OUT/$model-float.eval.json.tmp" "$OUT/$model-float.eval.json"
  fi
  point "$model" w8-naive --method naive --wbits 8
  for bits in $BITS; do
    point "$model" "w$bits-naive" --method naive --wbits "$bits"
    for budget in $BUDGETS; do
      point "$model" "w$bits-mp$budget" --method multipoint --wbits "$bits" --budget "$budget"
    done
  done
  for budget in $W2_BUDGETS; do
    point "$model" "w2-mp$budget" --method multipoint --wbits 2 --budget "$budget"
  done
done

"$PYTHON" scripts/quant_tradeoff.py "$OUT" "$DOCS/quantization_tradeoff.md" \
  "$DOCS/quantization_tradeoff.png" ${LIMIT:+--limit "$LIMIT"}
echo "wrote $DOCS/quantization_tradeoff.md and $DOCS/quantization_tradeoff.png"
