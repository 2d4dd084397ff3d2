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
