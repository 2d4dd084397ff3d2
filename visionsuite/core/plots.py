"""PNG plots for what a person would rather look at than read: curves and confusion matrices."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from visionsuite.core.files import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure, path: Path) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        figure.savefig(tmp, dpi=110, bbox_inches="tight")
    _pyplot().close(figure)


def history_panels(columns: list[str]) -> list[str]:
    """The panels of plot_history for history.csv's columns: each train metric (its val_ twin
    drawn beside it), then each metric that only val has."""
    columns = [name for name in columns if name not in ("epoch", "learning_rate")]
    names = [name for name in columns if not name.startswith("val_")]
    return names + [name[4:] for name in columns
                    if name.startswith("val_") and name[4:] not in names]


def plot_history(history_csv: Path, path: Path) -> Path | None:
    """Loss and every metric per epoch, one panel each: train against val, or val alone for
    what only val measures (detect's mAP, face's AUC and TAR on held-out people)."""
    if not history_csv.is_file():
        return None
    with history_csv.open() as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return None
    names = history_panels(list(rows[0]))
    plt = _pyplot()
    columns = min(4, len(names))
    lines = -(-len(names) // columns)
    figure, axes = plt.subplots(lines, columns, figsize=(4.5 * columns, 3.5 * lines),
                                squeeze=False)
    for axis in axes.flat[len(names):]:
        axis.axis("off")
    epochs = [int(row["epoch"]) + 1 for row in rows]
    for axis, name in zip(axes.flat, names):
        for key, style in ((name, "-"), (f"val_{name}", "--")):
            if key in rows[0]:
                axis.plot(epochs, [float(row[key] or "nan") for row in rows], style,
                          label="val" if key.startswith("val_") else "train")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    _save(figure, path)
    return path


def plot_confusion(confusion: np.ndarray, labels: list[str], path: Path) -> Path:
    """Row-normalised confusion matrix with the raw counts written in each cell."""
    plt = _pyplot()
    count = len(labels)
    side = min(2 + 0.45 * count, 24)
    figure, axis = plt.subplots(figsize=(side, side))
    totals = confusion.sum(axis=1, keepdims=True)
    normalised = np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)
    axis.imshow(normalised, cmap="Blues", vmin=0, vmax=1)
    if count <= 40:
        for (row, col), value in np.ndenumerate(confusion):
            if value:
                axis.text(col, row, str(value), ha="center", va="center", fontsize=8,
                          color="white" if normalised[row, col] > 0.5 else "black")
        axis.set_xticks(range(count), labels, rotation=90)
        axis.set_yticks(range(count), labels)
    axis.set_xlabel("predicted")
    axis.set_ylabel("true")
    axis.set_title("confusion matrix (val)")
    _save(figure, path)
    return path


PALETTE = np.array([[0, 0, 0], [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200],
                    [245, 130, 48], [145, 30, 180], [70, 240, 240], [240, 50, 230],
                    [210, 245, 60]], np.uint8)


def colorize(classes: np.ndarray) -> np.ndarray:
    """Class indices to RGB: class 0 black, the next nine distinct colours, the rest (255:
    ignored pixels) grey."""
    colors = np.concatenate([PALETTE, np.full((256 - len(PALETTE), 3), 128, np.uint8)])
    return colors[classes]


def object_colours(count: int) -> np.ndarray:
    """(count + 1, 3) uint8 RGB colours of objects numbered 1..count (0 black): hues a golden
    angle apart, so that neighbours, numbered one after the other, differ."""
    import colorsys

    hues = (np.arange(count) * 0.618034) % 1.0
    rgb = [colorsys.hsv_to_rgb(hue, 0.75, 1.0) for hue in hues]
    return np.concatenate([np.zeros((1, 3)), np.array(rgb).reshape(-1, 3) * 255]).astype(
        np.uint8)


def shown_image(image: np.ndarray) -> np.ndarray:
    """What a person sees of an (H, W, C) image: RGB as it is, else its first channel as
    (H, W) grey (a grey image; the first modality of a multi-channel MRI)."""
    return image if image.shape[-1] == 3 else image[..., 0]


def plot_segmentation_grid(images, truths, predictions, labels: list[str], names: list[str],
                           path: Path, rows: int = 6, split: str = "val") -> Path:
    """One row per image (at most `rows`): the image, the true mask, the predicted mask; a
    legend of the classes' colours above, titled with the `split` they are of."""
    from matplotlib.patches import Patch

    plt = _pyplot()
    count = min(rows, len(images))
    # rows as tall as the images are at this width: no blank bands around wide images
    aspect = max(image.shape[0] / image.shape[1] for image in images[:count])
    figure, axes = plt.subplots(count, 3, figsize=(10, count * (10 / 3 * aspect + 0.4)),
                                squeeze=False)
    for row in range(count):
        image = images[row]
        panels = [(shown_image(image), "image"),
                  (colorize(truths[row]), "truth"),
                  (colorize(predictions[row].astype(np.uint8)), "prediction")]
        for axis, (picture, title) in zip(axes[row], panels):
            axis.imshow(picture, cmap="gray" if picture.ndim == 2 else None)
            axis.set_title(f"{names[row]}: {title}" if title == "image" else title, fontsize=9)
            axis.axis("off")
    classes = [Patch(facecolor=colorize(np.array(index)) / 255, edgecolor="grey", label=name)
               for index, name in enumerate(labels[:len(PALETTE)])]
    classes.append(Patch(facecolor=colorize(np.array(255)) / 255, label="ignored"))
    figure.legend(handles=classes, loc="lower center", bbox_to_anchor=(0.5, 1.0),
                  ncol=min(len(classes), 6), fontsize=9, frameon=False, title=split)
    figure.tight_layout()
    _save(figure, path)
    return path


BOX_COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
               (70, 240, 240), (240, 50, 230), (210, 245, 60))
UNKNOWN_COLOUR = (128, 128, 128)


def draw_boxes(image, boxes: list[dict]) -> None:
    """Draw on a PIL image each of `boxes`: {"box": [x1, y1, x2, y2], "class": its label,
    "class_id": its colour's index (None: grey), "score"}, labelled "class score"."""
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(image)
    width = max(2, round(max(image.size) / 300))
    # Pillow's own font (it ships with Pillow), legible at the photo's scale
    font = ImageFont.load_default(size=max(10, round(max(image.size) / 60)))
    for item in boxes:
        colour = UNKNOWN_COLOUR if item["class_id"] is None \
            else BOX_COLOURS[item["class_id"] % len(BOX_COLOURS)]
        x1, y1, x2, y2 = item["box"]
        draw.rectangle([x1, y1, x2, y2], outline=colour, width=width)
        text = f"{item['class']} {item['score']:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        label_w, label_h = right - left + 4, bottom - top + 4
        # above the box, or inside it at the image's top edge; never past the right edge
        x = max(0, min(x1, image.size[0] - label_w))
        y = y1 - label_h if y1 >= label_h else y1
        draw.rectangle([x, y, x + label_w, y + label_h], fill=colour)
        draw.text((x + 2 - left, y + 2 - top), text, fill=(255, 255, 255), font=font)


def save_drawn(source: Path | np.ndarray, boxes: list[dict], target: Path,
               window: list[float] | None = None) -> None:
    """The image at `source`, as shown upright and read through `window` (data.window), or
    that image decoded already (RGB), with `boxes` drawn (draw_boxes), as a PNG."""
    from PIL import Image

    from visionsuite.core.images import read_image

    pixels = source if isinstance(source, np.ndarray) else read_image(source, None, 3, window)
    image = Image.fromarray(pixels)
    draw_boxes(image, boxes)
    target.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(target, suffix=".png") as tmp:
        image.save(tmp, format="PNG")
