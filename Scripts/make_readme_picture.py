#!/usr/bin/env python3
# requires: python>=3.11
# requires: pillow==13.0.0
#   (the version this script was written and tested with)
"""The README's picture: one photo and what `dino` draws for it, side by side.

    swift build -c release --product dino && python Scripts/make_readme_picture.py

runs the release `dino` on Examples/images/chelsea.png with the bundled random-weight test model
(pca, attention --separate, norms, and predict with a fixture segmentation head and LOST) and
writes docs/images/overview.png: the photo, the PCA colours, the mean CLS attention, the token
norms, the segmentation overlay and LOST's box, each with its caption.
"""
import subprocess
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parent.parent
DINO = ROOT / ".build/release/dino"
MODEL = ROOT / "Tests/DinoModelTests/Fixtures/reg4_downsample"
HEAD = ROOT / "Tests/DinoSegmentationTests/Fixtures/head_official.pth"
PHOTO = ROOT / "Examples/images/chelsea.png"
TILE_HEIGHT = 200


def dino(*arguments: str) -> None:
    subprocess.run([str(DINO), *arguments], check=True, capture_output=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        common = ["--model", str(MODEL), str(PHOTO), "--output-dir", str(out)]
        dino("pca", *common)
        dino("attention", *common, "--separate")
        dino("norms", *common)
        dino("predict", *common, "--head", f"segment={HEAD}", "--head", "discover=lost")
        tiles = [
            ("photo", PHOTO),
            ("PCA of patch features", out / "chelsea.pca.png"),
            ("CLS attention, mean of heads", out / "chelsea.attention.cls_mean.png"),
            ("token norms", out / "chelsea.norms.png"),
            ("segmentation probe", out / "chelsea.overlay.png"),
            ("LOST object discovery", out / "chelsea.discover.png"),
        ]
        images = []
        for caption, path in tiles:
            image = Image.open(path).convert("RGB")
            width = round(image.width * TILE_HEIGHT / image.height)
            images.append((caption, image.resize((width, TILE_HEIGHT), Image.Resampling.LANCZOS)))
        gap, label = 6, 18
        canvas = Image.new("RGB", (sum(i.width for _, i in images) + gap * (len(images) - 1), TILE_HEIGHT + label), "white")
        draw = ImageDraw.Draw(canvas)
        x = 0
        for caption, image in images:
            canvas.paste(image, (x, label))
            draw.text((x + 2, 3), caption, fill=(40, 40, 40))
            x += image.width + gap
        target = ROOT / "docs/images/overview.png"
        canvas.save(target, optimize=True)
        print(f"wrote {target} ({canvas.width}x{canvas.height})")


if __name__ == "__main__":
    main()
