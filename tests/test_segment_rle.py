"""Segmentation masks as run-length codes in a CSV, as Kaggle's sets ship them."""

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import snapshot
from test_cli import assert_one_line_error, invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.decode import decode_pairs
from visionsuite.tasks.segment.index import index_pairs

SIZE = (40, 30)  # width, height: not square, so that a wrong pixel order cannot pass


def run_lengths(mask: np.ndarray, order: str = "column") -> str:
    """Kaggle's code of a bool mask: 1-based `start length` pairs, in `order`."""
    flat = (mask.T if order == "column" else mask).ravel().astype(np.int8)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], flat, [0]])))
    starts, ends = edges[0::2], edges[1::2]
    return " ".join(f"{start + 1} {end - start}" for start, end in zip(starts, ends))


def _box(left: int, top: int, right: int, bottom: int) -> np.ndarray:
    mask = np.zeros(SIZE[::-1], bool)
    mask[top:bottom, left:right] = True
    return mask


def make_rle_set(root: Path, order: str = "column", classes: bool = False) -> dict:
    """Six grey images in stage1_train/<id>/images/ (the Data Science Bowl's layout) and
    train.csv naming them by stem, one row per object (two on most, none on the last);
    with `classes`, a ClassId column (Severstal's) giving the second object class 3.
    Returns each image's expected class map."""
    rng = np.random.default_rng(0)
    rows, expected = [], {}
    header = "ImageId,ClassId,EncodedPixels" if classes else "ImageId,EncodedPixels"
    for number in range(6):
        stem = f"{number:04x}cafe"
        folder = root / "stage1_train" / stem / "images"
        folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 255, SIZE[::-1], dtype=np.uint8)).save(
            folder / f"{stem}.png")
        target = np.zeros(SIZE[::-1], np.uint8)
        objects = [] if number == 5 else [(_box(2 + number, 3, 12 + number, 20), 1),
                                          (_box(25, 10 + number, 35, 14 + number), 3)]
        for mask, value in objects:
            value = value if classes else 1
            target[mask] = value
            rows.append(f"{stem},{value}," if classes else f"{stem},")
            rows[-1] += run_lengths(mask, order)
        if not objects:
            rows.append(f"{stem},1," if classes else f"{stem},")
        expected[stem] = target
    (root / "train.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return expected


def _decoded(index) -> dict[str, np.ndarray]:
    pairs = index.splits["train"] + index.splits["val"]
    items = decode_pairs(pairs, 1)[0]
    return {pair.image.stem: item.mask for pair, item in zip(pairs, items)}


@pytest.mark.parametrize("order", ["column", "row"])
def test_run_length_codes_draw_each_images_objects_in_their_pixel_order(tmp_path, order):
    expected = make_rle_set(tmp_path, order)
    index = index_pairs(tmp_path, 0.34, rle_order=order)
    assert index.class_names == ["background", "foreground"] and index.split_by_fraction
    assert len(index.splits["train"]) + len(index.splits["val"]) == 6 and index.splits["val"]
    assert index.folders[0].startswith(
        "masks: train.csv (images: column ImageId; run-length codes: column EncodedPixels, "
        f"pixels numbered {'top to bottom' if order == 'column' else 'left to right'}")
    for stem, mask in _decoded(index).items():
        np.testing.assert_array_equal(mask, expected[stem])
    other = "row" if order == "column" else "column"
    wrong = _decoded(index_pairs(tmp_path, 0.34, rle_order=other))
    assert any((wrong[stem] != expected[stem]).any() for stem in expected)


def test_a_class_column_gives_each_object_its_class(tmp_path):
    expected = make_rle_set(tmp_path, classes=True)
    index = index_pairs(tmp_path, 0.34)
    assert index.class_names == ["background", "1", "3"]
    for stem, mask in _decoded(index).items():
        np.testing.assert_array_equal(mask, np.array([0, 1, 0, 2])[expected[stem]])


def test_a_code_that_does_not_fit_its_image_is_an_error_naming_file_and_line(tmp_path):
    make_rle_set(tmp_path)
    table = tmp_path / "train.csv"
    lines = table.read_text().splitlines()
    for code, error in (("1190 20", r"train.csv:3: not `start length` pairs inside the 40x30 "
                                    r"image \(1200 pixels\)"),
                        ("5 2 9", r"train.csv:3: not `start length` pairs"),
                        ("5 x", r"train.csv:3: the run-length code holds something that is "
                                r"not a whole number")):
        table.write_text("\n".join(lines[:2] + [lines[2].rsplit(",", 1)[0] + "," + code]
                                   + lines[3:]) + "\n")
        index = index_pairs(tmp_path, 0.34)
        pairs = [pair for pair in index.splits["train"] + index.splits["val"]
                 if pair.image.stem == lines[2].split(",")[0]]
        with pytest.raises(VisionsuiteError, match=error):
            decode_pairs(pairs, 1)


def test_a_run_length_set_trains_and_data_check_says_how_it_read_it(tmp_path):
    data = tmp_path / "dsb"
    make_rle_set(data)
    before = snapshot(data)
    result = invoke("data", "check", "segment", data)
    assert result.exit_code == 0, result.output
    assert "pixels numbered top to bottom, then left to right, data.rle_order=column" \
        in result.output
    result = invoke("train", "segment", "--data", data, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--image-size", 16, "--set", "data.val_fraction=0.34")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "foreground"]
    assert snapshot(data) == before
    assert_one_line_error(invoke("train", "segment", "--data", data, "--output", tmp_path,
                                 "--set", "data.rle_order=diagonal"),
                          "'data.rle_order' must be column or row")


def test_codes_of_dicom_images_are_drawn_at_their_size(tmp_path):
    """SIIM-ACR's pneumothorax: DICOM files named by their SOP instance UID, codes per UID."""
    import shutil

    from test_medical import dicom_sample

    (tmp_path / "dicom-images-train" / "study").mkdir(parents=True)
    masks = {}
    for number in range(3):
        uid = f"1.2.276.0.7230010.3.1.4.{number}"
        shutil.copy(dicom_sample("CT_small.dcm"),  # 128 x 128
                    tmp_path / "dicom-images-train" / "study" / f"{uid}.dcm")
        masks[uid] = np.zeros((128, 128), bool)
        masks[uid][10 + number:40, 60:100] = True
    (tmp_path / "train-rle.csv").write_text("ImageId, EncodedPixels\n" + "".join(
        f"{uid}, {run_lengths(mask)}\n" for uid, mask in masks.items()))
    index = index_pairs(tmp_path, 0.34)
    for stem, mask in _decoded(index).items():
        np.testing.assert_array_equal(mask, masks[stem.removesuffix(".dcm")].astype(np.uint8))


def test_the_train_table_is_found_beside_a_sample_submission(tmp_path):
    """The Data Science Bowl: stage1_train_labels.csv beside stage1_sample_submission.csv,
    whose codes (1 1) name the same images, and a metadata table without codes."""
    expected = make_rle_set(tmp_path)
    (tmp_path / "train.csv").rename(tmp_path / "stage1_train_labels.csv")
    (tmp_path / "stage1_sample_submission.csv").write_text("ImageId,EncodedPixels\n" + "".join(
        f"{stem},1 1\n" for stem in expected))
    (tmp_path / "metadata.csv").write_text("image_id,width\n" + "".join(
        f"{stem},40\n" for stem in expected))
    index = index_pairs(tmp_path, 0.34)
    assert index.names_from == "stage1_train_labels.csv"
    for stem, mask in _decoded(index).items():
        np.testing.assert_array_equal(mask, expected[stem])
