"""Embedded default datasets: generated on first use, offline, into the user's cache folder.

`shapes` is a 5-class image-folder dataset (circle, square, triangle, star, cross) of 64x64
images with random colours, sizes, positions, rotations and noisy backgrounds: hard enough that
a model must learn shapes rather than colours, small enough to train in about a minute.
It is generated deterministically, so every machine gets the same pixels.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from visionsuite.errors import VisionsuiteError

SHAPES = ("circle", "square", "triangle", "star", "cross")
SHAPES_VERSION = "shapes-v1"
SHAPES_PER_CLASS = {"train": 120, "val": 40}


def cache_dir() -> Path:
    return Path(os.environ.get("VISIONSUITE_CACHE", Path.home() / ".cache" / "visionsuite"))


def resolve_dataset(path: str | None, task: str) -> Path:
    """The dataset folder for `path`; no path means the task's embedded default dataset."""
    if path:
        return Path(path).expanduser()
    if task == "classify":
        return shapes_dataset()
    if task == "detect":
        return boxes_dataset()
    raise VisionsuiteError(f"task '{task}' has no embedded dataset; pass --data PATH")


def shapes_dataset(root: Path | None = None) -> Path:
    """Generate (once) and return the embedded shapes dataset."""
    target = (root or cache_dir()) / SHAPES_VERSION
    if (target / "val").is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".shapes-", dir=target.parent))
    try:
        rng = np.random.default_rng(2026)
        for split, count in SHAPES_PER_CLASS.items():
            for label, shape in enumerate(SHAPES):
                folder = staging / split / shape
                folder.mkdir(parents=True)
                for index in range(count):
                    draw_shape(shape, rng).save(folder / f"{shape}_{index:04d}.png")
        os.replace(staging, target)  # atomic: a half-generated dataset is never used
    except OSError:
        if not (target / "val").is_dir():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


BOXES_VERSION = "boxes-v1"
BOX_SHAPES = ("circle", "square", "triangle")
BOXES_IMAGES = {"train": 240, "val": 60}


def boxes_dataset(root: Path | None = None) -> Path:
    """Generate (once) and return the embedded detection dataset, in YOLO format: 160x120
    noisy images holding 0-3 filled circles, squares and triangles (8-48 px), boxed."""
    target = (root or cache_dir()) / BOXES_VERSION
    if (target / "data.yaml").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".boxes-", dir=target.parent))
    try:
        rng = np.random.default_rng(2027)
        for split, count in BOXES_IMAGES.items():
            (staging / "images" / split).mkdir(parents=True)
            (staging / "labels" / split).mkdir(parents=True)
            for index in range(count):
                image, rows = draw_boxes_image(rng)
                image.save(staging / "images" / split / f"{split}_{index:04d}.png")
                (staging / "labels" / split / f"{split}_{index:04d}.txt").write_text(
                    "".join(f"{c} {x:.6f} {y:.6f} {w:.6f} {h:.6f}\n" for c, x, y, w, h in rows))
        names = "".join(f"  - {name}\n" for name in BOX_SHAPES)
        (staging / "data.yaml").write_text(f"train: images/train\nval: images/val\nnames:\n{names}")
        os.replace(staging, target)
    except OSError:
        if not (target / "data.yaml").is_file():
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def draw_boxes_image(rng: np.random.Generator, width: int = 160, height: int = 120):
    """One image and its YOLO rows (class, cx, cy, w, h normalised); shapes do not overlap."""
    from PIL import Image, ImageDraw

    background = rng.integers(0, 256, 3)
    base = np.clip(background + rng.normal(0, 18, (height, width, 3)), 0, 255).astype(np.uint8)
    image = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(image)
    rows, taken = [], []
    for _ in range(int(rng.integers(0, 4))):
        label = int(rng.integers(len(BOX_SHAPES)))
        radius = rng.uniform(4, 24)
        cx, cy = rng.uniform(radius + 1, width - radius - 1), rng.uniform(radius + 1,
                                                                            height - radius - 1)
        if any(abs(cx - x) < radius + r + 2 and abs(cy - y) < radius + r + 2
               for x, y, r in taken):
            continue
        taken.append((cx, cy, radius))
        colour = tuple(int(c) for c in (background + rng.integers(90, 166, 3)) % 256)
        corners = [cx - radius, cy - radius, cx + radius, cy + radius]
        if BOX_SHAPES[label] == "circle":
            draw.ellipse(corners, fill=colour)
        elif BOX_SHAPES[label] == "square":
            draw.rectangle(corners, fill=colour)
        else:
            draw.polygon([(cx, cy - radius), (cx + radius, cy + radius),
                          (cx - radius, cy + radius)], fill=colour)
        rows.append((label, cx / width, cy / height, 2 * radius / width, 2 * radius / height))
    return image, rows


def draw_shape(shape: str, rng: np.random.Generator, size: int = 64):
    from PIL import Image, ImageDraw

    background = rng.integers(0, 256, 3)
    noise = rng.normal(0, 18, (size, size, 3))
    base = np.clip(background + noise, 0, 255).astype(np.uint8)
    image = Image.fromarray(base, "RGB")
    colour = tuple(int(c) for c in (background + rng.integers(90, 166, 3)) % 256)
    radius = rng.uniform(0.18, 0.38) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    angle = rng.uniform(0, 2 * math.pi)
    draw = ImageDraw.Draw(image)
    if shape == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    elif shape == "cross":
        for turn in (0, math.pi / 2):
            dx, dy = math.cos(angle + turn) * radius, math.sin(angle + turn) * radius
            draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=colour, width=max(3, int(radius / 2.5)))
    else:
        draw.polygon(_polygon(shape, cx, cy, radius, angle), fill=colour)
    return image


def _polygon(shape: str, cx: float, cy: float, radius: float, angle: float):
    if shape == "square":
        radii, corners = [radius], 4
    elif shape == "triangle":
        radii, corners = [radius * 1.15], 3
    else:  # star: alternate outer and inner radius
        radii, corners = [radius * 1.1, radius * 0.45], 10
    return [
        (cx + radii[i % len(radii)] * math.cos(angle + 2 * math.pi * i / corners),
         cy + radii[i % len(radii)] * math.sin(angle + 2 * math.pi * i / corners))
        for i in range(corners)
    ]
