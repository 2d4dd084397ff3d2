"""PanNuke's layout: Fold 1/, Fold 2/, Fold 3/, each a stack of images (float64 8-bit
values) and a stack of masks of a layer per nucleus class numbering its nuclei, plus a
background layer (segment/fold_folders.py, core/arrays.py)."""

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import snapshot
from test_cli import assert_one_line_error, invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.core import medical
from visionsuite.core.arrays import one_hot_classes, own_window
from visionsuite.core.data import load_in_parallel
from visionsuite.core.images import read_mask_slices
from visionsuite.core.medical import read_slices
from visionsuite.core.splits import Fold
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.index import index_pairs

SIDE = 32


def pannuke_stack(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` images (float64 of whole 0..255 values) and their (count, H, W, 6) masks:
    squares numbered 1.. in the layer of their class (0..4), the last layer background."""
    rng = np.random.default_rng(seed)
    images = np.full((count, SIDE, SIDE, 3), 230.0)
    masks = np.zeros((count, SIDE, SIDE, 6))
    for index in range(count):
        for nucleus in range(4):
            kind, top, left = nucleus + index % 2, 2 + 7 * nucleus, rng.integers(0, SIDE - 6)
            masks[index, top:top + 5, left:left + 5, kind] = nucleus + 1
            images[index, top:top + 5, left:left + 5] = (40 * kind, 60, 150)
    masks[..., 5] = masks[..., :5].max(-1) == 0
    return images, masks


def background_pixels(count: int, fold: int) -> int:
    """The background pixels of make_pannuke's fold `fold` of `count` images."""
    return int(pannuke_stack(count, fold)[1][..., 5].sum())


def make_pannuke(root: Path, sizes=(4, 3, 3)) -> Path:
    """PanNuke as its authors ship it: Fold N/images/foldN/{images,types}.npy and
    Fold N/masks/foldN/masks.npy beside a README."""
    for number, count in enumerate(sizes, 1):
        images, masks = pannuke_stack(count, number)
        (root / f"Fold {number}" / "images" / f"fold{number}").mkdir(parents=True)
        (root / f"Fold {number}" / "masks" / f"fold{number}").mkdir(parents=True)
        np.save(root / f"Fold {number}" / "images" / f"fold{number}" / "images.npy", images)
        np.save(root / f"Fold {number}" / "images" / f"fold{number}" / "types.npy",
                np.array(["Breast"] * count))
        np.save(root / f"Fold {number}" / "masks" / f"fold{number}" / "masks.npy", masks)
        (root / f"Fold {number}" / "masks" / "README.md").write_text("PanNuke\n")
    return root


def test_class_layers_numbering_objects_with_a_background_layer():
    """PanNuke's masks: classes 1..5 where a layer numbers a nucleus, 0 where its last
    layer (background) is set. Before, layers other than 0 and 1 were no class layers."""
    _, masks = pannuke_stack(2, 0)
    classes = one_hot_classes(masks)
    assert classes.shape == (2, SIDE, SIDE) and set(np.unique(classes)) == {0, 1, 2, 3, 4, 5}
    assert np.array_equal(classes > 0, masks[..., 5] == 0)
    assert classes[0, 2, masks[0, 2, :, 0].argmax()] == 1
    overlapping = masks.copy()
    overlapping[..., 1] = overlapping[..., 0]  # nuclei of two classes at once: no classes
    assert one_hot_classes(overlapping) is None


def test_class_layers_numbering_objects_give_their_objects_from_the_same_pass():
    """PanNuke's nuclei, numbered within each class's layer, told apart across layers (for
    the object scores: objects.py); layers of 0 and 1 number no objects."""
    from visionsuite.core.arrays import numbered_layers

    _, masks = pannuke_stack(2, 0)
    classes, objects = numbered_layers(masks)
    assert np.array_equal(classes, one_hot_classes(masks))
    nuclei = masks[..., :5].max(-1)  # each nucleus' number in its layer
    layer = masks[..., :5].argmax(-1)
    assert np.array_equal(objects, np.where(classes > 0, nuclei * 6 + layer, 0))
    assert [len(np.unique(image)) - 1 for image in objects] == [4, 4]
    indices = np.zeros((2, 16, 16), np.int64)
    indices[:, 2:6, 2:6] = 1
    one_hot = np.eye(2, dtype=np.float32)[indices]
    classes, objects = numbered_layers(one_hot)
    assert np.array_equal(classes, indices) and objects is None
    assert numbered_layers(np.zeros((1, 16, 16, 3), np.float32) - 1) == (None, None)


def test_one_hot_masks_with_a_background_channel_read_it_as_background():
    """keras.utils.to_categorical's masks: channel k is class k, channel 0 the background.
    Before, the background channel was class 1 and every pixel had a class."""
    indices = np.zeros((2, 16, 16), np.int64)
    indices[:, 2:6, 2:6], indices[:, 9:12, 9:12] = 1, 2
    layers = np.eye(3, dtype=np.float32)[indices]
    assert np.array_equal(one_hot_classes(layers), indices)
    colour = np.zeros((1, 16, 16, 3), np.uint8)  # an 8-bit colour mask: no class layers
    colour[0, :8, :, 0], colour[0, 8:, :, 1] = 255, 128
    assert one_hot_classes(colour) is None


def test_eight_bit_values_stored_as_floats_are_read_as_eight_bit(tmp_path: Path):
    """PanNuke's images are float64 of whole values 0..255: read as they are, not stretched
    to their percentile range; other floats keep that range."""
    images, _ = pannuke_stack(2, 0)
    assert own_window(images) == (127.5, 255.0)
    assert own_window(images / 255) == (0.5, 1.0) and own_window(images + 0.5) is None
    np.save(tmp_path / "images.npy", images)
    read = read_slices(tmp_path / "images.npy")
    assert len(read) == 2 and np.array_equal(read[0], images[0].astype(np.uint8))


def test_fold_folders_are_the_splits(tmp_path: Path):
    """Fold 1 trains, Fold 2 validates, Fold 3 is the test split (PanNuke's authors' split);
    data.folds=3 rotates them; a lone image stack pairs with its lone mask stack."""
    root = make_pannuke(tmp_path / "PanNuke")
    index = index_pairs(root)
    assert index.folders[0] == "the set's own folds: train: Fold 1/; val: Fold 2/; test: Fold 3/"
    assert [pair.image.parent.name for pair in index.splits["train"]] == ["fold1"]
    assert [pair.mask.name for pair in index.splits["val"]] == ["masks.npy"]
    assert index.splits["val"][0].image.parent.name == "fold2" and not index.split_by_fraction
    test = index_pairs(root, held_out="test")
    assert test.splits["val"][0].image.parent.name == "fold3"
    assert test.folders[0] == "the set's own folds: train: Fold 1/; test: Fold 3/"
    checked = index_pairs(root, 1.0, held_out="test")  # data check --split test: the test fold
    assert [pair.image.parent.name for pair in checked.splits["val"]] == ["fold3"]
    rotated = index_pairs(root, Fold(2, 3))
    assert [pair.image.parent.name for pair in rotated.splits["train"]] == ["fold1", "fold2"]
    assert rotated.splits["val"][0].image.parent.name == "fold3" and rotated.split_by_fraction
    with pytest.raises(VisionsuiteError, match="the set comes in 3 folds of its own"):
        index_pairs(root, Fold(0, 5))
    with pytest.raises(VisionsuiteError, match="no test split"):
        index_pairs(root, Fold(0, 3), held_out="test")
    every = index_pairs(root, 1.0)  # EVERY_IMAGE: evaluated whole, as another dataset
    names = [pair.image.parent.name for pair in every.splits["val"]]
    assert names == ["fold1", "fold2", "fold3"] and not every.splits["train"]
    two = make_pannuke(tmp_path / "two", sizes=(2, 2))
    assert index_pairs(two).folders[0] == "the set's own folds: train: Fold 1/; val: Fold 2/"
    with pytest.raises(VisionsuiteError, match="no test split"):
        index_pairs(two, held_out="test")
    mask = read_mask_slices(index.splits["val"][0].mask)
    assert len(mask) == 3 and set(np.unique(mask)) == {0, 1, 2, 3, 4, 5}


@pytest.mark.slow
def test_pannuke_trains_and_evaluates_its_test_fold(tmp_path: Path):
    """With only --data: trained on fold 1, validated on fold 2, evaluated on fold 3 with
    --split test; data check names the folds, the 5 classes and one window for the RGB
    channels; `segment` given a fold's folder segments its images alone (before, its
    masks.npy too: a fold of one stack could not be split, so it was taken for no set); the
    set is left as it was."""
    root = make_pannuke(tmp_path / "PanNuke")
    before = snapshot(root)
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "the set's own folds: train: Fold 1/; val: Fold 2/; test: Fold 3/" in result.stdout
    assert "mask values: 0, 1, 2, 3, 4, 5" in result.stdout
    # 8-bit RGB, as a PNG: one window for the three channels, not one each as MRI's
    assert "images of 3 channels: channel 0, channel 1, channel 2" in result.stdout
    assert "  2 stacks of separate images (7 in all, not a volume's slices), each scored on " \
        "its own" in result.stdout.splitlines()
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert sorted(metrics["per_class"]) == [f"class_{number}" for number in range(6)]
    assert metrics["per_class"]["class_0"]["pixels"] == background_pixels(3, 2)
    # its tiles scored as separate images, not as one volume of the fold
    assert [row["image"] for row in metrics["per_image"]] == [f"images.npy#{n}" for n in
                                                              range(3)]
    assert "per_volume" not in metrics and "volume_dice" not in metrics
    # its nuclei scored as objects too (PanNuke's bPQ and mPQ): 4 an image
    assert metrics["objects"]["truth"] == 12 and "mpq" in metrics["objects"]
    result = invoke("evaluate", run, "--split", "test", "--json", tmp_path / "test.json")
    assert result.exit_code == 0, result.output
    scored = json.loads((tmp_path / "test.json").read_text())
    assert scored["split"] == "test" and scored["images"] == 3
    assert scored["per_class"]["class_0"]["pixels"] == background_pixels(3, 3)
    assert scored["objects"]["truth"] == 12
    result = invoke("segment", run, root / "Fold 3", "--output", tmp_path / "masks")
    assert result.exit_code == 0, result.output  # its masks.npy, a label file, left out
    assert "its 1 label file(s) left out" in result.stderr
    written = np.load(tmp_path / "masks" / "images.npy")
    assert written.shape == (3, SIDE, SIDE) and written.max() <= 5
    assert sorted(path.name for path in (tmp_path / "masks").iterdir()) == ["images.npy"]
    assert snapshot(root) == before
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    "--set", "data.folds=5", *TINY_SEGMENT)
    assert_one_line_error(result, "data.folds=5, but the set comes in 3 folds of its own")


def test_a_stack_is_windowed_in_steps_as_it_was_whole(tmp_path: Path, monkeypatch):
    """A PanNuke fold's images would be 2 GB of float32 at once: they are windowed a few
    slices at a time, to the values windowing the whole finite float32 stack gives."""
    values = np.random.default_rng(0).normal(100, 30, (7, 16, 16))
    values[2, 3, 4], values[5, 0, 0] = np.nan, np.inf
    np.save(tmp_path / "scan.npy", values)
    monkeypatch.setattr(medical, "WINDOWED_BYTES", 2 * 16 * 16 * 4)  # two slices a step
    finite = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    low, high = np.percentile(finite, medical.PERCENTILES)
    expected = np.clip(np.round((finite - low) * (255.0 / (high - low))), 0, 255)
    read = read_slices(tmp_path / "scan.npy", channels=1)
    assert np.array_equal(np.stack(read)[..., 0], expected.astype(np.uint8))


def test_a_stack_read_as_one_item_shows_how_far_it_has_got(tmp_path: Path, monkeypatch,
                                                           capsys):
    """A PanNuke fold is one item of its split's bar, a minute to read: its slices read so
    far show after the bar; a reader outside a bar shows nothing."""
    np.save(tmp_path / "images.npy", np.zeros((7, 16, 16, 3), np.uint8))
    monkeypatch.setattr(medical, "WINDOWED_BYTES", 2 * 16 * 16 * 3 * 4)
    read, _ = load_in_parallel(read_slices, [tmp_path / "images.npy"], 1, "decoding")
    assert len(read[0]) == 7 and "images 2/7" in capsys.readouterr().err
    read_slices(tmp_path / "images.npy")
    assert "images" not in capsys.readouterr().err


def test_a_stack_of_colour_tiles_is_scored_as_separate_images_not_as_a_volume(tmp_path: Path):
    """PanNuke's tiles are separate images: named images.npy#1, each a case of its own for
    the metrics and the largest-component post-processing, where a volume's slices
    (ct.npy[1]) are pooled as one case."""
    from visionsuite.tasks.segment.decode import case_members, decode_pair, slice_name
    from visionsuite.tasks.segment.metrics import segmentation_metrics

    root = make_pannuke(tmp_path / "PanNuke")
    pair = index_pairs(root).splits["val"][0]
    decoded = decode_pair(pair, 3, None, False)
    assert [(item.slice, item.separate) for item in decoded] == [(0, True), (1, True),
                                                                 (2, True)]
    names = [slice_name(pair.image, item.slice, item.separate).name for item in decoded]
    assert names == ["images.npy#0", "images.npy#1", "images.npy#2"]
    assert case_members(names) == [[0], [1], [2]]
    masks = [np.zeros((4, 4), np.uint8)] * 3
    probabilities = [np.eye(2, dtype=np.float32)[mask] for mask in masks]
    tiles = segmentation_metrics(probabilities, masks, ["background", "nucleus"], names=names)
    assert "per_volume" not in tiles and len(tiles["per_image"]) == 3
    volume = tmp_path / "ct.npy"  # grey slices: a volume's
    np.save(volume, np.random.default_rng(0).normal(0, 1, (3, SIDE, SIDE)))
    np.save(tmp_path / "ct_mask.npy", np.zeros((3, SIDE, SIDE), np.uint8))
    slices = decode_pair(type(pair)(volume, tmp_path / "ct_mask.npy"), 1, None, False)
    assert [item.separate for item in slices] == [False] * 3
    assert slice_name(volume, 1, False).name == "ct.npy[1]"
    assert not medical.separate_images(volume) and medical.separate_images(pair.image)
