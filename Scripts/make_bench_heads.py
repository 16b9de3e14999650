#!/usr/bin/env python3
# requires: python>=3.11
# requires: numpy==2.4.6 safetensors==0.8.0
#   (the versions this script was written and tested with; no PyTorch needed)
"""Random-weight heads in the released dinov2 layouts, for timing heads with `dino bench --head`.

    python Scripts/make_bench_heads.py --hidden-size 384 --depth 12 --out /tmp/dino-bench-cache/heads

writes, for a backbone of that width and depth:

  segmentation_linear.safetensors   dinov2 BNHead "linear": decode_head.bn.* and decode_head.conv_seg.*
                                    (C -> 150 ADE20K classes)
  depth_linear.safetensors          dinov2 depth "lin1": decode_head.conv_depth.* (2C -> 256 bins),
                                    metadata dataset nyu, 0.001-10 m, the last block

The weights are seeded and random: they time the heads' arithmetic, not their predictions. A
time is what the heads' shapes decide (1x1 convolutions, resizes), which random values do not
change.
"""
import argparse
import json
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden-size", type=int, required=True, help="backbone width C")
    parser.add_argument("--depth", type=int, required=True, help="backbone blocks")
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    c = args.hidden_size
    args.out.mkdir(parents=True, exist_ok=True)

    def normal(*shape: int, std: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * std).astype(np.float32)

    save_file({
        "decode_head.bn.weight": 1 + normal(c, std=0.1),
        "decode_head.bn.bias": normal(c),
        "decode_head.bn.running_mean": normal(c, std=0.5),
        "decode_head.bn.running_var": (1 + np.abs(normal(c, std=0.5))).astype(np.float32),
        "decode_head.bn.num_batches_tracked": np.array(1000, dtype=np.int64),
        "decode_head.conv_seg.weight": normal(args.classes, c, 1, 1),
        "decode_head.conv_seg.bias": normal(args.classes),
    }, str(args.out / "segmentation_linear.safetensors"))
    save_file({
        "decode_head.conv_depth.weight": normal(256, 2 * c, 1, 1),
        "decode_head.conv_depth.bias": normal(256),
    }, str(args.out / "depth_linear.safetensors"),
        metadata={"dataset": "nyu", "min_depth": "0.001", "max_depth": "10.0", "out_indices": json.dumps([args.depth - 1])})
    print(f"wrote {args.out}/segmentation_linear.safetensors and depth_linear.safetensors")


if __name__ == "__main__":
    main()
