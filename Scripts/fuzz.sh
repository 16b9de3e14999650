#!/usr/bin/env bash
# Builds the libFuzzer targets (Swift -sanitize=fuzzer,address) and runs each for SECONDS.
#
#   Scripts/fuzz.sh [SECONDS] [TARGET ...]
#       TARGET: safetensors config pth image tar npy labelpng voc coco (default: all)
#
# Seed inputs are Tests/Fuzz/Corpus/<target>/ (committed); inputs the fuzzer discovers go to
# .build-fuzz/corpus/<target>/ and crashes to .build-fuzz/crashes/<target>/ (copy a crash into the
# seed corpus once it is fixed). Every run is capped at 4 GB of RSS and 512 MB per allocation, so
# an input that makes a reader allocate from an unchecked size counts as a crash. Exits non-zero
# if any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(safetensors config pth image tar npy labelpng voc coco)

root=$(pwd)
build="${FUZZ_BUILD:-.build-fuzz}"
mkdir -p "$build/modules/CDinoKernels" "$build/modules/COpenCVBridge" "$build/obj"
san="-sanitize=fuzzer,address"
blas_include=/usr/include/x86_64-linux-gnu/openblas-pthread
blas_lib=/usr/lib/x86_64-linux-gnu/openblas-pthread

cat > "$build/modules/CDinoKernels/module.modulemap" <<MAP
module CDinoKernels { umbrella "$root/Sources/CDinoKernels/include" export * }
MAP
cat > "$build/modules/COpenCVBridge/module.modulemap" <<MAP
module COpenCVBridge { header "$root/Sources/COpenCVBridge/include/dino_opencv.h" export * }
MAP
includes=(-I "$build/modules/CDinoKernels" -I "$build/modules/COpenCVBridge" -I Sources/COpenBLAS -I Sources/CZlib -Xcc -I"$blas_include" -I "$build")

echo "building C kernels and the OpenCV bridge" >&2
for source in Sources/CDinoKernels/*.c; do
    clang -O1 -g -fsanitize=address,fuzzer-no-link -I Sources/CDinoKernels/include -c "$source" -o "$build/obj/$(basename "$source" .c).o"
done
clang++ -O1 -g -fsanitize=address,fuzzer-no-link -std=c++17 -I Sources/COpenCVBridge/include -I /usr/include/opencv4 \
    -c Sources/COpenCVBridge/bridge.cpp -o "$build/obj/bridge.o"

module() {  # name, sources...
    local name=$1
    shift
    echo "building $name" >&2
    swiftc $san -O -parse-as-library -wmo -package-name dinov2_swift -module-name "$name" -emit-module -emit-module-path "$build/$name.swiftmodule" \
        "${includes[@]}" -c "$@" -o "$build/obj/$name.o"
}
# In dependency order (Package.swift).
module DinoCompute Sources/DinoCompute/*.swift
module DinoTensor Sources/DinoTensor/*.swift
module DinoModel Sources/DinoModel/*.swift
module DinoImage Sources/DinoImage/*.swift
module DinoLayers Sources/DinoLayers/*.swift
module DinoPipeline Sources/DinoPipeline/*.swift
module DinoDataset Sources/DinoDataset/*.swift
module DinoSegmentation Heads/DinoSegmentation/*.swift
module DinoDiscovery Heads/DinoDiscovery/*.swift

link=(-L"$blas_lib" -lopenblas -lz -lopencv_core -lopencv_imgproc -lopencv_imgcodecs -lpng16 -ljpeg -lstdc++)
declare -A harness=([safetensors]=SafetensorsFuzz [config]=ConfigFuzz [pth]=TorchCheckpointFuzz [image]=ImageFuzz
                    [tar]=TarFuzz [npy]=NumpyFuzz [labelpng]=LabelPNGFuzz [voc]=VOCFuzz [coco]=COCOFuzz)
# Leaks are looked for per input (libFuzzer's -detect_leaks), not at exit: LeakSanitizer takes
# what Swift globals hold for leaked (it does not see through Swift's tagged enum pointers).
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}leak_check_at_exit=0"
status=0
for target in "${targets[@]}"; do
    file=${harness[$target]:?unknown target $target}
    echo "linking fuzz-$target" >&2
    swiftc $san -O -parse-as-library "${includes[@]}" "Tests/Fuzz/$file.swift" "$build"/obj/*.o "${link[@]}" -o "$build/fuzz-$target"
    mkdir -p "$build/corpus/$target" "$build/crashes/$target"
    echo "fuzzing $target for $seconds s" >&2
    if ! "$build/fuzz-$target" -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=512 -timeout=20 -print_final_stats=1 \
        -artifact_prefix="$build/crashes/$target/" "$build/corpus/$target" "Tests/Fuzz/Corpus/$target" \
        2> "$build/fuzz-$target.log"; then
        echo "fuzz-$target found a problem; see $build/fuzz-$target.log and $build/crashes/$target/" >&2
        status=1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$build/fuzz-$target.log" | sed "s/^/  $target: /" >&2 || true
done
exit $status
