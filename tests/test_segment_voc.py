"""Segmentation sets in Pascal VOC's layout (ImageSets/Segmentation/ lists, JPEGImages/,
SegmentationClass/), as VOC ships and CVAT exports them ("Segmentation mask 1.1")."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError

HEIGHT, WIDTH = 40, 56
CVAT_COLOURS = {"background": (0, 0, 0), "cell": (250, 50, 83), "debris": (51, 221, 255)}
VOID = 255


def voc_palette() -> list[int]:
    """VOC's palette: index i's colour from its bits, spread over the three channels."""
    palette = []
    for index in range(256):
        rgb = [0, 0, 0]
        for bit in range(8):
            for channel in range(3):
                rgb[channel] |= ((index >> (3 * bit + channel)) & 1) << (7 - bit)
        palette += rgb
    return palette


def write_pair(folder: Path, stem: str, number: int, cvat: bool) -> None:
    """An image of a bright box (class 1 + number % 2) and its class mask: a palette PNG of
    indices with VOC's void border, or CVAT's colour PNG."""
    mask = np.zeros((HEIGHT, WIDTH), np.uint8)
    top, left = 8 + number % 5, 10 + number % 7
    mask[top:top + 16, left:left + 24] = 1 + number % 2
    image = np.random.default_rng(number).integers(0, 60, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    image[mask > 0] += 120 + 40 * (mask[mask > 0, None] - 1)
    Image.fromarray(image).save(folder / "JPEGImages" / f"{stem}.jpg", quality=95)
    if cvat:
        colours = np.array(list(CVAT_COLOURS.values()), np.uint8)
        Image.fromarray(colours[mask]).save(folder / "SegmentationClass" / f"{stem}.png")
        return
    mask[top - 1, left:left + 24] = VOID  # the border VOC leaves unjudged
    painted = Image.fromarray(mask, "P")
    painted.putpalette(voc_palette())
    painted.save(folder / "SegmentationClass" / f"{stem}.png")


def voc_set(folder: Path, lists: dict[str, range], cvat: bool = False,
            unlisted: int = 2) -> Path:
    """A VOC set in `folder`: the images of `lists` (split -> numbers) with masks, and
    `unlisted` more images without (VOC's detection images)."""
    for sub in ("JPEGImages", "SegmentationClass", "SegmentationObject", "ImageSets/Segmentation"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    numbers = sorted({n for found in lists.values() for n in found})
    for number in numbers:
        write_pair(folder, f"2007_{number:06d}", number, cvat)
    for number in range(unlisted):
        Image.new("RGB", (WIDTH, HEIGHT)).save(folder / "JPEGImages" / f"2008_{number:06d}.jpg")
    for split, found in lists.items():
        (folder / "ImageSets/Segmentation" / f"{split}.txt").write_text(
            "".join(f"2007_{n:06d}\n" for n in found))
    if cvat:
        (folder / "labelmap.txt").write_text("# label:color_rgb:parts:actions\n" + "".join(
            f"{name}:{','.join(map(str, rgb))}::\n" for name, rgb in CVAT_COLOURS.items()))
    return folder


def test_a_voc_set_reads_its_lists_palette_indices_void_and_class_names(tmp_path):
    from visionsuite.core.images import read_mask_slices
    from visionsuite.tasks.segment.index import index_pairs
    from visionsuite.tasks.segment.mask_classes import IGNORE, class_map

    voc_set(tmp_path / "VOCdevkit" / "VOC2012", {"train": range(5), "val": range(5, 8),
                                                 "trainval": range(8), "test": range(8, 10)})
    index = index_pairs(tmp_path)  # the archive's root: VOCdevkit/VOC2012 is found in it
    assert [[p.image.stem for p in index.splits[s]] for s in ("train", "val")] == [
        [f"2007_{n:06d}" for n in range(5)], [f"2007_{n:06d}" for n in range(5, 8)]]
    assert not index.split_by_fraction
    assert index.class_names[:3] == ["background", "aeroplane", "bicycle"]
    assert len(index.class_names) == 21 and "Pascal VOC's list" in index.names_from
    assert "SegmentationObject/ not read" in index.folders[0]
    (mask,) = read_mask_slices(index.splits["val"][0].mask)
    assert set(np.unique(mask)) == {0, 2, VOID}  # palette indices, not the palette's colours
    assert class_map({0, 1, 2, VOID}, index.class_names).lookup[VOID] == IGNORE
    test = index_pairs(tmp_path, 0.2, held_out="test")
    assert [p.image.stem for p in test.splits["val"]] == ["2007_000008", "2007_000009"]
    assert test.splits["train"] == []


def test_a_voc_set_without_train_and_val_lists_is_split_by_fraction(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    voc_set(tmp_path / "mine", {"default": range(10)})  # not named VOC20xx: no VOC names
    index = index_pairs(tmp_path / "mine")
    assert index.split_by_fraction and len(index.splits["val"]) == 2
    assert len(index.splits["train"]) == 8 and index.class_names is None
    with pytest.raises(VisionsuiteError, match=r"no test split \(ImageSets/Segmentation/test"):
        index_pairs(tmp_path / "mine", 0.2, held_out="test")


def test_bad_voc_sets_get_one_line_errors_naming_the_file(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    root = voc_set(tmp_path / "set", {"train": range(3), "val": range(3, 5)})
    (root / "SegmentationClass" / "2007_000001.png").unlink()
    with pytest.raises(VisionsuiteError,
                       match=r"train.txt:2: 2007_000001 has no file in SegmentationClass/"):
        index_pairs(root)
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000000\n../../secret\n")
    with pytest.raises(VisionsuiteError, match=r"train.txt:2: ../../secret has no file in "
                                               "JPEGImages/"):
        index_pairs(root)
    (root / "ImageSets/Segmentation/train.txt").write_text("\n")
    with pytest.raises(VisionsuiteError, match="train.txt: lists no images"):
        index_pairs(root)
    (root / "ImageSets/Segmentation/train.txt").write_text("2007_000000\n")
    outside = tmp_path / "outside.jpg"
    Image.new("RGB", (WIDTH, HEIGHT)).save(outside)
    (root / "JPEGImages" / "2007_000000.jpg").unlink()
    (root / "JPEGImages" / "2007_000000.jpg").symlink_to(outside)
    with pytest.raises(VisionsuiteError, match="path leaves the dataset folder"):
        index_pairs(root)
    for path in (root / "JPEGImages").iterdir():
        path.unlink()
    (root / "JPEGImages").rmdir()
    with pytest.raises(VisionsuiteError, match="no JPEGImages/ folder .*'Save images'"):
        index_pairs(root)
    (root / "JPEGImages").mkdir()
    (root / "labelmap.txt").write_text("background:0,0,0::\ncell 250 50 83\n")
    with pytest.raises(VisionsuiteError, match=r"labelmap.txt:2: expected `name:r,g,b"):
        index_pairs(root)


def test_a_cvat_export_trains_evaluates_and_segments_in_its_labelmaps_classes(tmp_path):
    root = voc_set(tmp_path / "export", {"default": range(10)}, cvat=True, unlisted=0)
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "classes (named in labelmap.txt): 0 background" in result.output, result.output
    assert "1 cell" in result.output and "2 debris" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "cell", "debris"]
    assert "'#fa3253'" in (run / "config.yaml").read_text()  # labelmap's colours kept
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * HEIGHT * WIDTH
    result = invoke("segment", run, root / "JPEGImages" / "2007_000001.jpg", "--output",
                    tmp_path / "masks")
    assert result.exit_code == 0, result.output
    written = Image.open(tmp_path / "masks" / "2007_000001.png")
    palette = np.array(written.getpalette()[:9]).reshape(3, 3)
    assert [tuple(rgb) for rgb in palette] == list(CVAT_COLOURS.values())
    # a colour no class of labelmap.txt has: data check names it
    mask = np.array(Image.open(root / "SegmentationClass" / "2007_000003.png"))
    mask[:4, :4] = (9, 9, 200)
    Image.fromarray(mask).save(root / "SegmentationClass" / "2007_000003.png")
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 1 and "mask colours #0909c8 are none of the classes'" \
        in result.output, result.output


def test_data_check_points_at_a_voc_sets_test_list(tmp_path):
    root = voc_set(tmp_path / "VOC2007", {"train": range(3), "val": range(3, 5),
                                          "test": range(5, 7)})
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "test split: ImageSets/Segmentation/test.txt, not read by train" in result.output
    assert "255: void, left out of the loss and the metrics" in result.output


def test_the_post_processing_table_counts_many_foreground_classes_instead_of_naming_them():
    from visionsuite.tasks.segment import _shown_structure
    from visionsuite.tasks.segment.voc import VOC_CLASSES

    assert _shown_structure("kidney+tumour") == "kidney+tumour"
    assert _shown_structure("+".join(VOC_CLASSES[1:])) == "all 20 foreground classes"


def test_a_voc_test_archive_is_read_for_evaluation_alone(tmp_path):
    from visionsuite.core.splits import EVERY_IMAGE
    from visionsuite.tasks.segment.index import index_pairs

    root = voc_set(tmp_path / "VOCdevkit" / "VOC2007", {"test": range(3)})
    with pytest.raises(VisionsuiteError, match="no list of training images .* `--split test` "
                                               "reads test.txt"):
        index_pairs(root)
    for held_out in ("val", "test"):  # evaluate --data VOCtest, and its --split test
        index = index_pairs(root, EVERY_IMAGE, held_out=held_out, train=False)
        assert len(index.splits["val"]) == 3 and index.splits["train"] == []
    assert len(index_pairs(root, 0.2, held_out="test").splits["val"]) == 3  # data check's


def test_masks_written_for_a_run_trained_on_voc_palette_masks_show_its_palette(tmp_path):
    root = voc_set(tmp_path / "VOC2012", {"train": range(6), "val": range(6, 8)})
    result = invoke("train", "segment", "--data", root, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    result = invoke("segment", run, root / "JPEGImages" / "2007_000001.jpg", "--output",
                    tmp_path / "masks")
    assert result.exit_code == 0, result.output
    written = Image.open(tmp_path / "masks" / "2007_000001.png")
    assert written.mode == "P"  # class indices, shown in VOC's colours as its masks are
    assert written.getpalette()[:9] == voc_palette()[:9]
    assert set(np.unique(np.asarray(written))) <= set(range(21))
