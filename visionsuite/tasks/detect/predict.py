"""Detections from a Keras model or a .tflite, the NMS graph that is exported, and
`visionsuite detect`.

The exported graph ends in TFLite's detection post-process convention, in this order:
boxes (1, N, 4) as normalised (ymin, xmin, ymax, xmax), classes (1, N), scores (1, N) and the
count (1,), all float32: what MediaPipe's ObjectDetector and the TFLite detection APIs read.
Non-max suppression is per class (each box competes with boxes of its own best class only),
by shifting each class's boxes into their own region before a single-class NMS, which converts
to TFLite's builtin NON_MAX_SUPPRESSION_V5.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visionsuite.config import Config
from visionsuite.errors import VisionsuiteError


def serving_fn(model, config: Config):
    """x (1, S, S, 3) float 0..255 -> (boxes, classes, scores, count), NMS inside."""
    import tensorflow as tf

    from visionsuite.tasks.detect.model import decode_levels, head_outputs

    size = config.data.image_size
    heads = head_outputs(model)
    limit, iou = config.model.max_detections, config.model.nms_iou
    threshold = config.model.score_threshold

    def serve(x):
        boxes, probs = decode_levels(heads(x, training=False), size)
        scores = tf.reduce_max(probs[0], -1)
        classes = tf.cast(tf.argmax(probs[0], -1), tf.float32)
        normalised = tf.clip_by_value(boxes[0] / size, 0.0, 1.0)
        yx = tf.gather(normalised, [1, 0, 3, 2], axis=-1)
        shifted = yx + 2.0 * classes[:, None]  # classes never overlap: per-class NMS
        selected, count = tf.image.non_max_suppression_padded(
            shifted, scores, limit, iou_threshold=iou, score_threshold=threshold,
            pad_to_max_output_size=True)
        valid = tf.cast(tf.range(limit) < count, tf.float32)
        out_boxes = tf.gather(yx, selected) * valid[:, None]
        out_classes = tf.gather(classes, selected) * valid
        out_scores = tf.gather(scores, selected) * valid
        return (out_boxes[None], out_classes[None], out_scores[None],
                tf.cast(count, tf.float32)[None])

    return serve


def decode_numpy(raw: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    from visionsuite.tasks.detect.model import REG_MAX, anchor_grid

    points, strides = anchor_grid(size)
    logits = raw[..., :4 * REG_MAX].reshape(raw.shape[0], raw.shape[1], 4, REG_MAX)
    logits = logits - logits.max(-1, keepdims=True)
    weights = np.exp(logits)
    expected = (weights * np.arange(REG_MAX)).sum(-1) / weights.sum(-1) * strides[None, :, None]
    boxes = np.concatenate([points[None] - expected[..., :2], points[None] + expected[..., 2:]],
                           -1)
    return boxes, 0.5 * (1.0 + np.tanh(0.5 * raw[..., 4 * REG_MAX:]))  # sigmoid, no overflow


def predict_split(predictor, split, config: Config) -> list[dict]:
    """Per image: {'boxes' (N, 4) x1 y1 x2 y2 in pixels of the upright image, 'scores',
    'classes'}, at the model's NMS settings (score threshold model.score_threshold)."""
    results = images_to_detections(predictor, split.images, config)
    return [_to_image_pixels(r, size, config.data.image_size)
            for r, size in zip(results, split.sizes)]


def images_to_detections(predictor, images: np.ndarray, config: Config) -> list[dict]:
    """Detections on the model's S x S grid for each S x S input image."""
    from visionsuite.tasks.detect.model import nms_numpy

    if hasattr(predictor, "model"):  # Keras: raw output, decoded and suppressed here
        raw = predictor.predict(images)
        boxes, probs = decode_numpy(raw, config.data.image_size)
        results = []
        for image_boxes, image_probs in zip(boxes, probs):
            kept = nms_numpy(np.clip(image_boxes, 0, config.data.image_size), image_probs,
                             config.model.score_threshold, config.model.nms_iou,
                             config.model.max_detections)
            results.append(dict(zip(("boxes", "scores", "classes"), kept)))
        return results
    return [_read_tflite(predictor, image, config.data.image_size) for image in images]


def _read_tflite(predictor, image: np.ndarray, size: int) -> dict:
    from visionsuite.core.models import dequantize

    outputs = predictor.invoke(predictor.quantize_input(image[None]))
    values = [dequantize(v, d) for v, d in zip(outputs, predictor.outputs)]
    if len(values) != 4:
        raise VisionsuiteError(f"the .tflite has {len(values)} outputs; a visionsuite "
                               "detector has 4 (boxes, classes, scores, count)")
    boxes, classes, scores, count = values
    count = int(round(float(count.reshape(-1)[0])))
    yx = boxes.reshape(-1, 4)[:count]
    return {"boxes": yx[:, [1, 0, 3, 2]] * size, "scores": scores.reshape(-1)[:count],
            "classes": classes.reshape(-1)[:count].round().astype(np.int64)}


def _to_image_pixels(result: dict, size: tuple[int, int], side: int) -> dict:
    width, height = size
    scale = np.array([width / side, height / side, width / side, height / side], np.float32)
    return {"boxes": (np.asarray(result["boxes"], np.float32).reshape(-1, 4) * scale),
            "scores": np.asarray(result["scores"], np.float32),
            "classes": np.asarray(result["classes"], np.int64)}


# --------------------------------------------------------------------------- visionsuite detect


def detect_images(run: str, inputs, conf: float = 0.25, iou: float | None = None,
                  max_detections: int | None = None, output: str | Path | None = None) -> list:
    """Detect objects in images (files or folders): per image its boxes in pixels of the
    original image, classes and scores, and a copy with the boxes drawn (in `output`, else in
    a new runs/detect/predictN)."""
    from visionsuite.config import load_config
    from visionsuite.core.evaluate import load_run_config
    from visionsuite.core.files import RUNS, new_run_dir, unique_stem, writable_folder
    from visionsuite.core.images import UnreadableImage, collect_images, inspect_image, read_image
    from visionsuite.core.models import load_predictor, require_task, resolve_model
    from visionsuite.core.plots import save_drawn
    from visionsuite.core.progress import progress, warn

    source = resolve_model(run)
    require_task(source, "detect", run)
    has_config = source.run_dir is not None and (source.run_dir / "config.yaml").is_file()
    # A bare .tflite (copied out of its run) keeps its own NMS; the detect defaults fill in.
    config = load_run_config(source) if has_config else load_config("detect")
    if iou is not None:
        config.model.nms_iou = iou
    if max_detections is not None:
        config.model.max_detections = max_detections
    predictor = load_predictor(source)
    labels = source.labels or []
    size = predictor.image_size
    window = source.settings.get("window")  # 16-bit images, read as in training
    config.data.image_size = size
    paths = collect_images(list(inputs), outputs=() if output is None else (output,))
    folder = new_run_dir(Path(RUNS) / "detect", None, "predict") if output is None \
        else writable_folder(Path(output), "the drawn images")
    results, used = [], set()
    for path in progress(paths, total=len(paths), desc="detecting"):
        try:
            upright = inspect_image(path, decode=False)[0]  # as read_image shows it
            image = read_image(path, size, 3, window)
        except UnreadableImage as err:
            warn(f"{err}; skipped")
            continue
        found = _to_image_pixels(images_to_detections(predictor, image[None], config)[0],
                                 upright, size)
        keep = found["scores"] >= conf
        detections = [{"class": labels[c] if c < len(labels) else str(c), "class_id": int(c),
                       "score": round(float(s), 4),
                       "box": [round(float(v), 1) for v in b]}
                      for b, s, c in zip(found["boxes"][keep], found["scores"][keep],
                                         found["classes"][keep])]
        drawn = folder / f"{unique_stem(path.stem, used)}.png"
        save_drawn(path, detections, drawn, window)
        results.append({"image": str(path), "width": upright[0], "height": upright[1],
                        "detections": detections, "drawn": str(drawn)})
    if not results:
        raise VisionsuiteError("none of the images could be read")
    return results


def plot_detection_grid(split, outputs: list[dict], labels: list[str], path: Path,
                        count: int = 8, conf: float = 0.25) -> None:
    """Val images with ground truth (white) and predictions (colours, score >= conf)."""
    from PIL import Image, ImageDraw

    from visionsuite.core.plots import _pyplot, _save, draw_boxes

    plt = _pyplot()
    shown = min(count, len(split))
    columns = min(4, shown)
    rows = -(-shown // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 4 * rows), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    side = split.images.shape[1]
    for index in range(shown):
        image = Image.fromarray(split.images[index])
        scale = np.array([side / split.sizes[index][0], side / split.sizes[index][1]] * 2)
        draw = ImageDraw.Draw(image)
        for row in split.targets[index]:
            draw.rectangle(list(row[1:] * scale), outline=(255, 255, 255), width=2)
        result = outputs[index]
        keep = result["scores"] >= conf
        draw_boxes(image, [{"class": labels[c] if c < len(labels) else str(c),
                            "class_id": int(c), "score": float(s), "box": list(b * scale)}
                           for b, s, c in zip(result["boxes"][keep], result["scores"][keep],
                                              result["classes"][keep])])
        axes.ravel()[index].imshow(image)
        axes.ravel()[index].set_title(split.paths[index].name, fontsize=8)
    _save(figure, path)

