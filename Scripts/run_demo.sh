#!/usr/bin/env bash
# The main job: build `dino`, then compute features and draw the PCA, attention and token-norm
# pictures of the photos in Examples/images, and run heads on them (segmentation and LOST object
# discovery on one backbone pass per batch).
#
#   Scripts/run_demo.sh [MODEL] [OUTPUT_DIR]
#
# MODEL defaults to a checkpoint bundled with the tests, which works offline but has RANDOM
# weights (hidden size 32, 2 blocks): its pictures show the machinery, not DINOv2's features.
# Pass a hub id such as facebook/dinov2-with-registers-small for the real weights (downloaded
# once into the Hugging Face cache) or a local model folder.
set -euo pipefail
cd "$(dirname "$0")/.."
bundled="Tests/DinoModelTests/Fixtures/reg4_downsample"
model="${1:-$bundled}"
out="${2:-dino-output}"
if [ "$model" = "$bundled" ]; then
    echo "note: using the bundled random-weight test checkpoint; pass a hub id for real weights" >&2
fi
swift build -c release --product dino
dino=.build/release/dino
"$dino" features --model "$model" Examples/images --registers --output-dir "$out"
"$dino" pca --model "$model" Examples/images --output-dir "$out"
"$dino" pca --model "$model" Examples/images --mask-threshold 0.5 --output-dir "$out/pca-foreground"
"$dino" attention --model "$model" Examples/images --output-dir "$out"
"$dino" norms --model "$model" Examples/images --output-dir "$out"
if [ "$model" = "$bundled" ]; then
    # A random head of the test fixtures that fits the bundled model (5 classes).
    heads=(--head segment=Tests/DinoSegmentationTests/Fixtures/head_official.pth --head discover=lost)
else
    heads=(--head discover=lost)
fi
"$dino" predict --model "$model" "${heads[@]}" Examples/images --output-dir "$out" --json "$out/predict.json"
echo "pictures and features are in $out/" >&2
