"""Detector pieces on tiny tensors: anchors, decoding, NMS, metrics, the loss, the NMS graph."""

import numpy as np
import pytest

from visionsuite.config import load_config
from visionsuite.tasks.detect.metrics import detection_metrics, precision_recall
from visionsuite.tasks.detect.model import REG_MAX, anchor_grid, nms_numpy
from visionsuite.tasks.detect.predict import decode_numpy


def tiny_config(size=64):
    config = load_config("detect")
    config.data.image_size, config.model.width, config.model.depth = size, 0.125, 0.33
    return config


def test_anchors_are_cell_centres_of_three_strides():
    points, strides = anchor_grid(64)
    assert len(points) == 8 * 8 + 4 * 4 + 2 * 2
    np.testing.assert_allclose(points[0], [4, 4])
    np.testing.assert_allclose(points[1], [12, 4])  # row-major: x moves first
    np.testing.assert_allclose(points[64], [8, 8])
    assert strides[0] == 8 and strides[-1] == 32


def test_decoding_takes_the_expected_distance_of_each_side():
    points, _ = anchor_grid(64)
    raw = np.full((1, len(points), 4 * REG_MAX + 2), -50.0, np.float32)
    # Anchor 0 (centre 4,4, stride 8): all mass on bin 2 for every side -> 16 px each way.
    raw[0, 0, :4 * REG_MAX].reshape(4, REG_MAX)[:, 2] = 50.0
    raw[0, 0, 4 * REG_MAX + 1] = 3.0
    boxes, probs = decode_numpy(raw, 64)
    np.testing.assert_allclose(boxes[0, 0], [-12, -12, 20, 20], atol=1e-4)
    assert probs[0, 0, 1] == pytest.approx(1 / (1 + np.exp(-3.0)))


def test_keras_decoding_matches_numpy():
    from visionsuite.tasks.detect.model import decode

    points, _ = anchor_grid(64)
    raw = np.random.default_rng(0).normal(0, 2, (2, len(points), 4 * REG_MAX + 3))
    raw = raw.astype(np.float32)
    boxes, probs = decode(raw, 64)
    expected_boxes, expected_probs = decode_numpy(raw, 64)
    np.testing.assert_allclose(np.asarray(boxes), expected_boxes, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(np.asarray(probs), expected_probs, rtol=1e-5)


def test_nms_is_per_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60]],
                     np.float32)
    scores = np.array([[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.6, 0.0]], np.float32)
    kept_boxes, kept_scores, kept_classes = nms_numpy(boxes, scores, 0.01, 0.5, 10)
    np.testing.assert_allclose(kept_scores, [0.9, 0.7, 0.6])  # box 1 overlaps box 0
    assert kept_classes.tolist() == [0, 1, 0]


def _output(boxes, scores, classes):
    return {"boxes": np.array(boxes, np.float32).reshape(-1, 4),
            "scores": np.array(scores, np.float32), "classes": np.array(classes, np.int64)}


def test_perfect_detections_score_one():
    targets = [np.array([[0, 10, 10, 50, 40], [1, 60, 20, 90, 70]], np.float32)]
    outputs = [_output([[10, 10, 50, 40], [60, 20, 90, 70]], [0.9, 0.8], [0, 1])]
    metrics = detection_metrics(outputs, targets, [(100, 100)], ["a", "b"])
    assert metrics["map50"] == pytest.approx(1.0) and metrics["map50_95"] == pytest.approx(1.0)
    assert metrics["precision"] == 1.0 and metrics["recall"] == 1.0


def test_a_better_scored_false_positive_halves_ap():
    # One box; a wrong detection outranks the right one: precision 1/2 at recall 1, so the
    # 101-point interpolated AP is 0.5 (hand computation).
    targets = [np.array([[0, 10, 10, 50, 50]], np.float32)]
    outputs = [_output([[60, 60, 90, 90], [10, 10, 50, 50]], [0.9, 0.8], [0, 0])]
    metrics = detection_metrics(outputs, targets, [(100, 100)], ["a"])
    assert metrics["map50"] == pytest.approx(0.5, abs=1e-3)
    assert precision_recall(outputs, targets, 1, conf=0.85) == (0.0, 0.0)
    assert precision_recall(outputs, targets, 1, conf=0.5) == (0.5, 1.0)


def test_a_detection_of_an_ignored_region_counts_neither_way():
    """A VOC difficult object (or COCO crowd) is not a box to find, and detecting it is not a
    false positive: as the VOC devkit and pycocotools score them."""
    targets = [np.array([[0, 10, 10, 50, 50]], np.float32)]
    ignored = [np.array([[0, 60, 60, 90, 90]], np.float32)]
    outputs = [_output([[60, 60, 90, 90], [10, 10, 50, 50]], [0.9, 0.8], [0, 0])]
    metrics = detection_metrics(outputs, targets, [(100, 100)], ["a"], ignored=ignored)
    assert metrics["map50"] == pytest.approx(1.0) and metrics["ignored_regions"] == 1
    assert precision_recall(outputs, targets, 1, conf=0.5, ignored=ignored) == (1.0, 1.0)
    # Only a detection of the region's class is excused.
    other = [np.array([[1, 60, 60, 90, 90]], np.float32)]
    assert precision_recall(outputs, targets, 2, conf=0.5, ignored=other) == (0.5, 1.0)
    # An image holding only ignored regions has nothing to find and no false positive.
    alone = detection_metrics([_output([[60, 60, 90, 90]], [0.9], [0])] + outputs,
                              [np.zeros((0, 5), np.float32)] + targets,
                              [(100, 100)] * 2, ["a"], ignored=ignored + ignored)
    assert alone["map50"] == pytest.approx(1.0) and alone["precision"] == 1.0


def test_a_box_at_iou_0_58_counts_at_two_of_the_ten_thresholds():
    targets = [np.array([[0, 0, 0, 100, 100]], np.float32)]
    # IoU 0.58 with the truth: a hit at thresholds 0.5 and 0.55 only.
    outputs = [_output([[0, 0, 100, 58]], [0.9], [0])]
    metrics = detection_metrics(outputs, targets, [(100, 100)], ["a"])
    assert metrics["map50"] == pytest.approx(1.0)
    assert metrics["map50_95"] == pytest.approx(0.2, abs=1e-3)


def test_loss_falls_when_a_tiny_detector_fits_one_batch():
    import keras

    from conftest import compile_quickly
    from visionsuite.tasks.detect.model import _keras_loss, build_detector

    keras.utils.set_random_seed(0)
    config = tiny_config()
    model = build_detector(config, 2)
    loss = _keras_loss()(classes=2, size=64)
    images = np.random.default_rng(0).integers(0, 255, (4, 64, 64, 3)).astype(np.float32)
    images[:, 10:40, 10:40] = 255.0
    targets = np.full((4, 3, 5), -1, np.float32)
    targets[:, 0] = [1, 10, 10, 40, 40]
    compile_quickly(model, loss, 3e-3)
    first = model.train_on_batch(images, targets)
    for _ in range(15):
        last = model.train_on_batch(images, targets)
    assert np.isfinite(first) and last < 0.7 * first


def test_exported_graph_gives_the_boxes_of_the_numpy_path():
    import keras

    from visionsuite.core.models import KerasPredictor
    from visionsuite.tasks.detect.model import build_detector
    from visionsuite.tasks.detect.predict import images_to_detections, serving_fn

    keras.utils.set_random_seed(1)
    config = tiny_config()
    config.model.score_threshold = 0.0
    model = build_detector(config, 3)
    image = np.random.default_rng(1).integers(0, 255, (1, 64, 64, 3)).astype(np.float32)
    boxes, classes, scores, count = (np.asarray(v) for v in serving_fn(model, config)(image))
    assert boxes.shape == (1, 100, 4) and classes.shape == scores.shape == (1, 100)
    assert count.shape == (1,) and 0 < count[0] <= 100
    host = images_to_detections(KerasPredictor(model), image, config)[0]
    yx = boxes[0, 0] * 64
    np.testing.assert_allclose([yx[1], yx[0], yx[3], yx[2]], host["boxes"][0], atol=0.05)
    assert scores[0, 0] == pytest.approx(host["scores"][0], abs=1e-5)
    assert classes[0, 0] == host["classes"][0]


@pytest.mark.parametrize("backbone", ["yolo", "mobilenetv2", "resnet18"])
def test_detector_builds_on_the_yolo_backbone_and_zoo_backbones(backbone):
    from visionsuite.tasks.detect.model import build_detector

    config = tiny_config()
    config.model.backbone = backbone
    model = build_detector(config, 4)
    assert model.output_shape == (None, len(anchor_grid(64)[0]), 4 * REG_MAX + 4)


def test_image_size_must_suit_the_strides():
    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks.detect.model import build_detector

    with pytest.raises(VisionsuiteError, match="multiple of 32"):
        build_detector(tiny_config(size=100), 1)


def test_a_box_at_the_images_top_right_corner_keeps_its_whole_label_inside_the_image():
    from PIL import Image

    from visionsuite.core.plots import BOX_COLOURS as COLOURS, draw_boxes

    image = Image.new("RGB", (160, 120))
    draw_boxes(image, [{"box": [150, 0, 159, 10], "class": "triangle", "class_id": 0,
                        "score": 0.9}])
    painted = (np.asarray(image) == COLOURS[0]).all(axis=-1)
    rows, cols = np.nonzero(painted)
    # the label (about 60 x 15 px) is drawn inside, from the top edge, ending at the right edge
    assert painted.sum() > 400
    assert rows.min() == 0 and cols.max() == 159 and cols.min() < 110


def _square_with_a_box(size=64, box=(10, 6, 30, 20)):
    image = np.zeros((size, size, 3), np.uint8)
    x1, y1, x2, y2 = box
    image[y1:y2, x1:x2] = 255
    return image, np.array([box], np.float32)


def _extent(image):
    rows, cols = np.nonzero(image[..., 0] > 127)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize("switch", ["flip", "vflip", "rotate90"])
def test_flips_and_quarter_turns_move_boxes_exactly_with_the_pixels(switch):
    from types import SimpleNamespace

    from visionsuite.tasks.detect.augment import flip_and_turn

    image, boxes = _square_with_a_box()
    config = SimpleNamespace(flip=0.0, vflip=0.0, rotate90=0.0)
    setattr(config, switch, 1.0)
    moved_image, moved_boxes = flip_and_turn(image, boxes, config, np.random.default_rng(0))
    assert moved_boxes[0].tolist() == _extent(moved_image)
    assert moved_boxes[0].tolist() != boxes[0].tolist()


def test_a_turned_box_encloses_the_turned_object():
    from visionsuite.tasks.detect.augment import random_affine

    image, boxes = _square_with_a_box()
    for seed in range(5):
        turned, moved, kept = random_affine(image, boxes, 64, 0.0, 0.0,
                                            np.random.default_rng(seed), degrees=40.0)
        assert kept.tolist() == [0]
        # the box of the turned corners, within the half pixel that bilinear edges blur
        assert np.abs(moved[0] - _extent(turned)).max() <= 1.0
        assert (moved[0, 2] - moved[0, 0]) * (moved[0, 3] - moved[0, 1]) > 20 * 14


def test_an_augmentation_the_task_does_not_apply_is_a_one_line_error():
    from visionsuite.config import load_config
    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks import get_task

    get_task("detect").check_augment(load_config("detect", sets=["augment.rotate=15",
                                                                 "augment.vflip=0.5"]))
    with pytest.raises(VisionsuiteError, match=r"augment.erase=0.5: detect does not apply it"):
        get_task("detect").check_augment(load_config("detect", sets=["augment.erase=0.5"]))
    with pytest.raises(VisionsuiteError, match=r"augment.hue=0.1: classify does not apply it"):
        get_task("classify").check_augment(load_config("classify", sets=["augment.hue=0.1"]))
    for task in ("classify", "segment", "detect", "face"):
        get_task(task).check_augment(load_config(task))  # the shipped configs


def test_without_rotation_the_affine_moves_boxes_by_the_plain_scale_and_shift_bit_for_bit():
    """Runs made before rotation existed repeat exactly (a float64 matrix changed the last
    bits, and so, through training, a run's mAP by as much as chance does)."""
    from visionsuite.tasks.detect.augment import random_affine

    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    boxes = np.array([[10.5, 20.25, 60.75, 70.5], [30, 5, 100, 40]], np.float32)
    _, moved, kept = random_affine(image, boxes, 64, 0.5, 0.1, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    factor, shift = rng.uniform(0.5, 1.5), rng.uniform(-0.1, 0.1, 2) * 64
    offset = np.array([32 - factor * 60 + shift[0], 32 - factor * 45 + shift[1]], np.float32)
    expected = np.clip(boxes * np.float32(factor) + np.concatenate([offset, offset]), 0, 64)
    assert np.array_equal(moved, expected[kept])


def test_mosaic_stops_for_the_last_epochs_of_the_plan_that_a_time_budget_cuts(monkeypatch):
    from types import SimpleNamespace

    from visionsuite.tasks.detect import train as detect_train

    config = tiny_config()
    config.train.epochs, config.train.batch_size = 10, 1
    config.augment.mosaic, config.augment.mosaic_off_epochs = 1.0, 2
    class OneImage(SimpleNamespace):
        def __len__(self):
            return 1

    split = OneImage(images=[np.zeros((64, 64, 3), np.uint8)],
                     targets=[np.array([[0, 8, 8, 32, 32]], np.float32)], sizes=[(64, 64)])
    batches = detect_train.TrainBatches(split, config)
    mosaic_used = []

    def recording(index, images, boxes, classes, augment, use_mosaic, rng):
        mosaic_used.append(use_mosaic)
        return images[0], boxes[0], classes[0]

    monkeypatch.setattr(detect_train, "augment_sample", recording)
    for epoch in (7, 3):
        batches.start_at_epoch(epoch)
        batches[0]
    assert mosaic_used == [True, True]  # the last two of 10 epochs are 8 and 9
    batches.plan_epochs(5)
    batches[0]
    assert mosaic_used[-1] is False  # epoch 3 is one of the last two of 5
