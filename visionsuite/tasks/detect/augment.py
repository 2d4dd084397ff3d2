"""Detection augmentation that moves the boxes with the pixels: mosaic, random scale,
rotation and translation (crops), horizontal and vertical flips, quarter turns, and
hue/saturation/value and contrast jitter. A rotated box becomes the box enclosing its turned
corners (as Ultralytics does without polygons): a little larger than the object, so the shipped
config leaves rotation off; top-down imagery (aerial, microscopy) turns and flips freely.

Images are stored resized to S x S (the whole image, aspect not kept: what phone runtimes such
as MediaPipe feed the model, so that training sees what the phone sees); boxes are (x1, y1, x2,
y2) pixels on that grid. NumPy and OpenCV on the host: per image it costs about a millisecond,
next to a training step of about half a second for 16 images at 320 px on 2 cores.
"""

from __future__ import annotations

import numpy as np

FILL = 114  # grey of the borders that scaling and mosaic open up (YOLO's choice)
MIN_SIDE = 2.0  # boxes narrower than this after augmentation are dropped (pixels)
MIN_KEPT = 0.1  # ... or those keeping less than this fraction of their (scaled) area


def mosaic(images: list[np.ndarray], boxes: list[np.ndarray], rng) -> tuple:
    """Four S x S images tiled around a random centre of a 2S x 2S canvas (YOLOv4's mosaic)."""
    size = images[0].shape[0]
    canvas = np.full((2 * size, 2 * size, 3), FILL, np.uint8)
    cx, cy = (int(rng.uniform(0.5 * size, 1.5 * size)) for _ in range(2))
    placed = []
    for corner, (image, box) in enumerate(zip(images, boxes)):
        # Top-left, top-right, bottom-left, bottom-right of the centre.
        x0 = cx - size if corner in (0, 2) else cx
        y0 = cy - size if corner in (0, 1) else cy
        canvas[max(y0, 0):y0 + size, max(x0, 0):x0 + size] = \
            image[max(-y0, 0):size - max(y0 + size - 2 * size, 0),
                  max(-x0, 0):size - max(x0 + size - 2 * size, 0)]
        placed.append(box + np.array([x0, y0, x0, y0], np.float32))
    return canvas, np.concatenate(placed) if placed else np.zeros((0, 4), np.float32)


def random_affine(image: np.ndarray, boxes: np.ndarray, size: int, scale: float,
                  translate: float, rng, degrees: float = 0.0) -> tuple:
    """Scale by 1 +- `scale`, turn by up to +- `degrees` and shift by up to `translate` of the
    side, about the centre of `image`, into a size x size output; boxes follow (turned ones
    enclose their turned corners), clipped, and those mostly cut off are dropped. Returns
    (image, boxes, kept indices)."""
    import cv2

    factor = rng.uniform(1 - scale, 1 + scale)
    angle = rng.uniform(-degrees, degrees) if degrees else 0.0
    height, width = image.shape[:2]
    shift = rng.uniform(-translate, translate, 2) * size
    # Output = A @ input + t, A a turn (counter-clockwise, cv2's sense) scaled by `factor`,
    # t taking the image's centre to the output's (+ shift). float32, summed in this order:
    # unturned, the same pixels and boxes as before rotation existed, to the last bit.
    cos, sin = factor * np.cos(np.radians(angle)), factor * np.sin(np.radians(angle))
    turn = np.array([[cos, sin], [-sin, cos]])
    offset = [size / 2 - (turn[row, 0] * width / 2 + turn[row, 1] * height / 2) + shift[row]
              for row in range(2)]
    matrix = np.concatenate([turn, np.array(offset)[:, None]], axis=1).astype(np.float32)
    warped = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR,
                            borderValue=(FILL, FILL, FILL))
    if not len(boxes):
        return warped, boxes, np.zeros(0, np.int64)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)  # (N, 4 corners, x y)
    turned = corners @ matrix[:, :2].T + matrix[:, 2]
    moved = np.concatenate([turned.min(axis=1), turned.max(axis=1)], axis=1)
    clipped = np.clip(moved, 0, size)
    width_ok = clipped[:, 2] - clipped[:, 0] > MIN_SIDE
    height_ok = clipped[:, 3] - clipped[:, 1] > MIN_SIDE
    area = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    before = np.maximum((moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1]), 1e-6)
    kept = np.flatnonzero(width_ok & height_ok & (area / before > MIN_KEPT))
    return warped, clipped[kept].astype(np.float32), kept


def flip_and_turn(image: np.ndarray, boxes: np.ndarray, config, rng) -> tuple:
    """Horizontal and vertical flips and a quarter turn (counter-clockwise) of a square
    image, each with its probability; exact for pixels and boxes. (Only the probabilities
    above 0 draw a random number: runs without them repeat those made before they existed.)"""
    size = image.shape[0]
    if rng.random() < config.flip:
        image, boxes = image[:, ::-1], boxes[:, [2, 1, 0, 3]] * [-1, 1, -1, 1] + [size, 0, size, 0]
    if config.vflip and rng.random() < config.vflip:
        image, boxes = image[::-1], boxes[:, [0, 3, 2, 1]] * [1, -1, 1, -1] + [0, size, 0, size]
    if config.rotate90 and rng.random() < config.rotate90:  # (x, y) -> (y, size - x)
        image, boxes = np.rot90(image), boxes[:, [1, 2, 3, 0]] * [1, -1, 1, -1] + [0, size, 0, size]
    return image, boxes


def contrast_jitter(image: np.ndarray, contrast: float, rng) -> np.ndarray:
    """Stretch or squeeze the intensities about their mean by 1 +- `contrast`."""
    if not contrast:
        return image
    mean = image.mean()
    factor = rng.uniform(1 - contrast, 1 + contrast)
    return np.clip((image.astype(np.float32) - mean) * factor + mean, 0, 255).astype(np.uint8)


def hsv_jitter(image: np.ndarray, hue: float, saturation: float, value: float, rng):
    import cv2

    if not (hue or saturation or value):
        return image
    gains = rng.uniform(-1, 1, 3) * [hue, saturation, value] + 1
    h, s, v = cv2.split(cv2.cvtColor(image, cv2.COLOR_RGB2HSV))
    table = np.arange(256, dtype=np.float32)
    h = cv2.LUT(h, ((table * gains[0]) % 180).astype(np.uint8))
    s = cv2.LUT(s, np.clip(table * gains[1], 0, 255).astype(np.uint8))
    v = cv2.LUT(v, np.clip(table * gains[2], 0, 255).astype(np.uint8))
    return cv2.cvtColor(cv2.merge((h, s, v)), cv2.COLOR_HSV2RGB)


def augment_sample(index: int, images: np.ndarray, boxes: list[np.ndarray],
                   classes: list[np.ndarray], config, use_mosaic: bool, rng):
    """One augmented training sample: (image S x S x 3 uint8, boxes (N, 4), classes (N,))."""
    size = images.shape[1]
    if use_mosaic and rng.random() < config.mosaic:
        picks = [index] + list(rng.integers(0, len(images), 3))
        image, box = mosaic([images[i] for i in picks], [boxes[i] for i in picks], rng)
        label = np.concatenate([classes[i] for i in picks])
    else:
        image, box, label = images[index], boxes[index], classes[index]
    image, box, kept = random_affine(image, box, size, config.zoom, config.translate, rng,
                                     config.rotate)
    label = label[kept]
    image, box = flip_and_turn(image, box.reshape(-1, 4), config, rng)
    image = hsv_jitter(np.ascontiguousarray(image), config.hue, config.saturation,
                       config.brightness, rng)
    image = contrast_jitter(image, config.contrast, rng)
    return image, box.reshape(-1, 4).astype(np.float32), label.astype(np.int64)


def pack_targets(boxes: list[np.ndarray], classes: list[np.ndarray], max_boxes: int):
    """(B, max_boxes, 5) rows of (class, x1, y1, x2, y2), padded with class -1: the loss's
    y_true. Images with more boxes keep their largest `max_boxes`."""
    targets = np.full((len(boxes), max_boxes, 5), -1.0, np.float32)
    for row, (box, label) in enumerate(zip(boxes, classes)):
        if len(box) > max_boxes:
            order = np.argsort(-(box[:, 2] - box[:, 0]) * (box[:, 3] - box[:, 1]))[:max_boxes]
            box, label = box[order], label[order]
        targets[row, :len(box), 0] = label
        targets[row, :len(box), 1:] = box
    return targets
