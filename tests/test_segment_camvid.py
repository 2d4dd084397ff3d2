"""Segmentation sets laid out as CamVid, DeepGlobe and the Massachusetts roads come: split
folders beside their masks' folders (train/, train_labels/), masks beside images each with its
own ending (_sat.jpg, _mask.png), and the class colours in a class_dict.csv."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError

HEIGHT, WIDTH = 36, 48
CLASSES = {"Sky": (128, 128, 128), "Building": (128, 0, 0), "Road": (128, 64, 128),
           "Void": (0, 0, 0)}


def scene(number: int) -> tuple[np.ndarray, np.ndarray]:
    """A street-like image (sky, buildings, road, a void corner) and its colour mask."""
    classes = np.zeros((HEIGHT, WIDTH), np.uint8)
    horizon = 10 + number % 4
    classes[horizon:2 * horizon] = 1
    classes[2 * horizon:] = 2
    classes[-6:, :6] = 3
    shades = np.array([[200, 200, 230], [130, 60, 50], [80, 80, 90], [0, 0, 0]], np.uint8)
    noise = np.random.default_rng(number).integers(0, 20, (HEIGHT, WIDTH, 3))
    image = np.clip(shades[classes] + noise, 0, 255).astype(np.uint8)
    return image, np.array(list(CLASSES.values()), np.uint8)[classes]


def class_dict(root: Path, name: str = "class_dict.csv") -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / name).write_text("name,r,g,b\n" + "".join(
        f"{label},{r},{g},{b}\n" for label, (r, g, b) in CLASSES.items()))


def camvid(root: Path, counts: dict[str, int]) -> Path:
    """CamVid as Kaggle ships it: SPLIT/NAME.png beside SPLIT_labels/NAME_L.png."""
    class_dict(root)
    number = 0
    for split, count in counts.items():
        (root / split).mkdir()
        (root / f"{split}_labels").mkdir()
        for _ in range(count):
            image, mask = scene(number)
            Image.fromarray(image).save(root / split / f"0001TP_{number:06d}.png")
            Image.fromarray(mask).save(root / f"{split}_labels" / f"0001TP_{number:06d}_L.png")
            number += 1
    return root


def test_split_folders_beside_their_masks_folders_pair_and_name_classes_from_class_dict(
        tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    root = camvid(tmp_path / "CamVid", {"train": 4, "val": 2, "test": 2})
    index = index_pairs(root)
    assert [len(index.splits[s]) for s in ("train", "val")] == [4, 2]
    assert {p.mask.parent.name for p in index.splits["val"]} == {"val_labels"}
    assert "train: train/ (masks: train_labels/)" in index.folders
    assert index.class_names == list(CLASSES)  # the table's order, Void included
    assert index.class_colours == ["#808080", "#800000", "#804080", "#000000"]
    test = index_pairs(root, 0.2, held_out="test")
    assert {p.mask.parent.name for p in test.splits["val"]} == {"test_labels"}
    # SegNet's CamVid: trainannot/ beside train/, masks named as their images
    (root / "train_labels").rename(root / "trainannot")
    for mask in (root / "trainannot").iterdir():
        mask.rename(mask.with_name(mask.name.replace("_L", "")))
    assert {p.mask.parent.name for p in index_pairs(root).splits["train"]} == {"trainannot"}


def test_masks_beside_images_that_all_have_an_ending_of_their_own_pair(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    class_dict(tmp_path / "deepglobe")
    (tmp_path / "deepglobe" / "train").mkdir()
    for number in range(5):
        image, mask = scene(number)
        Image.fromarray(image).save(tmp_path / "deepglobe" / "train" / f"{100 + number}_sat.jpg")
        Image.fromarray(mask).save(tmp_path / "deepglobe" / "train" / f"{100 + number}_mask.png")
    index = index_pairs(tmp_path / "deepglobe")
    pairs = [pair for split in index.splits.values() for pair in split]
    assert sorted((p.image.name, p.mask.name) for p in pairs)[0] == ("100_sat.jpg",
                                                                     "100_mask.png")
    assert len(pairs) == 5
    (tmp_path / "deepglobe" / "train" / "104_mask.png").unlink()  # unpaired: still an error
    with pytest.raises(VisionsuiteError, match="unpaired files: 1 image"):
        index_pairs(tmp_path / "deepglobe")


def test_cellpose_instance_masks_pair_with_their_images_and_train_as_foreground(tmp_path):
    """Cellpose's sets: 000_img.png beside 000_masks.png, a 16-bit image numbering the cells
    1..N, in train/ and test/."""
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("test", 2)):
        (tmp_path / "cellpose" / split).mkdir(parents=True)
        for number in range(count):
            image, mask = np.zeros((32, 32), np.uint8), np.zeros((32, 32), np.uint16)
            for cell in range(1, 301):  # more cells than 8 bits can number
                y, x = rng.integers(0, 30, 2)
                mask[y:y + 2, x:x + 2], image[y:y + 2, x:x + 2] = cell, 200
            Image.fromarray(image).save(tmp_path / "cellpose" / split / f"{number:03d}_img.png")
            Image.fromarray(mask).save(tmp_path / "cellpose" / split / f"{number:03d}_masks.png")
    index = index_pairs(tmp_path / "cellpose")
    assert [(p.image.name, p.mask.name) for p in index.splits["val"]] == [
        ("000_img.png", "000_masks.png"), ("001_img.png", "001_masks.png")]
    (mask,) = _read_masks(index.splits["val"][0], binary=True)
    assert set(np.unique(mask)) == {0, 255} and (mask > 0).sum() > 100


def test_a_bad_class_colour_table_is_one_line_naming_its_row(tmp_path):
    from visionsuite.tasks.segment.index import index_pairs

    root = camvid(tmp_path / "set", {"train": 3, "val": 2})
    (root / "class_dict.csv").write_text("name,r,g,b\nSky,128,128,128\nRoad,128,64\n")
    with pytest.raises(VisionsuiteError, match=r"class_dict.csv:3: expected a class name and "
                                               "its r, g and b"):
        index_pairs(root)


def test_a_camvid_set_trains_and_scores_its_test_split_with_only_data(tmp_path):
    root = camvid(tmp_path / "CamVid", {"train": 4, "val": 2, "test": 2})
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "classes (named in class_dict.csv): 0 Sky" in result.output, result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == list(CLASSES)
    result = invoke("evaluate", run, "--split", "test", "--json", tmp_path / "test.json")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "test.json").read_text())
    assert metrics["pixels"] == 2 * HEIGHT * WIDTH
    assert set(metrics["per_class"]) == set(CLASSES)


def test_a_test_folder_of_images_without_masks_is_left_out_and_val_split_by_fraction(
        tmp_path):
    """Kaggle's and the challenges' test/ of images alone."""
    from visionsuite.tasks.segment.index import index_pairs

    root = camvid(tmp_path / "set", {"train": 5})
    (root / "test").mkdir()
    for number in range(2):
        Image.fromarray(scene(number)[0]).save(root / "test" / f"{number}_sat.jpg")
    index = index_pairs(root)
    assert index.split_by_fraction and len(index.splits["val"]) == 1
    assert "test/: images without masks, not read (`visionsuite segment RUN test/` predicts " \
        "them)" in index.folders
    with pytest.raises(VisionsuiteError, match="test: images without masks, nothing to score"):
        index_pairs(root, 0.2, held_out="test")
    (root / "val").mkdir()  # a labelled val/ beside it: test/ is still no test split to score
    (root / "val_labels").mkdir()
    image, mask = scene(9)
    Image.fromarray(image).save(root / "val" / "9.png")
    Image.fromarray(mask).save(root / "val_labels" / "9.png")
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0 and "test split:" not in result.output, result.output


def test_a_valid_folder_of_images_alone_is_left_out_with_a_warning_as_deepglobe_ships_it(
        tmp_path, capsys):
    from visionsuite.tasks.segment.index import index_pairs

    root = camvid(tmp_path / "deepglobe", {"train": 5})
    for folder in ("valid", "test"):
        (root / folder).mkdir()
        for number in range(2):
            Image.fromarray(scene(number)[0]).save(root / folder / f"{number}_sat.jpg")
    index = index_pairs(root)
    assert index.split_by_fraction and len(index.splits["val"]) == 1
    assert "valid/: images without masks, not read (`visionsuite segment RUN valid/` " \
        "predicts them)" in index.folders
    warning = f"{root / 'valid'}: images without any masks, not read; val is split from train/"
    assert index.warnings == [warning]
    assert capsys.readouterr().err == ""  # the index says it; train and data check show it
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0 and f"warning: {warning}\n" in result.stderr
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0 and f"warning: {warning}\n" in result.stderr


def test_pairs_named_with_their_split_first_are_split_so_as_glas_names_them(tmp_path):
    """GlaS: train_1.bmp with train_1_anno.bmp, testA_1.bmp, testB_1.bmp ... in one folder
    (inside the folder its archive unpacks to), the masks numbering the glands."""
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "glas" / "Warwick QU Dataset (Released 2016_07_08)"
    root.mkdir(parents=True)
    for split, count in (("train", 4), ("testA", 2), ("testB", 1)):
        for number in range(1, count + 1):
            image, mask = scene(number)
            Image.fromarray(image).save(root / f"{split}_{number}.bmp")
            Image.fromarray((mask > 0).astype(np.uint8) * number).save(
                root / f"{split}_{number}_anno.bmp")
    (root / "Grade.csv").write_text("name,patient ID,grade (GlaS)\ntrain_1,1,benign\n")
    index = index_pairs(tmp_path / "glas")
    assert not index.split_by_fraction
    assert sorted(p.image.name for p in index.splits["val"]) == [
        "testA_1.bmp", "testA_2.bmp", "testB_1.bmp"]
    assert len(index.splits["train"]) == 4
    assert "split by the word their names begin with: testA_ (2), testB_ (1), train_ (4); " \
        "val: test" in index.folders
    test = index_pairs(tmp_path / "glas", held_out="test")
    assert len(test.splits["val"]) == 3 and not test.splits["train"]
    (root / "extra_1.bmp").write_bytes((root / "train_1.bmp").read_bytes())  # a name of none
    (root / "extra_1_anno.bmp").write_bytes((root / "train_1_anno.bmp").read_bytes())
    assert index_pairs(tmp_path / "glas").split_by_fraction


def test_images_in_sub_folders_pair_with_masks_below_theirs_as_refuge_lays_them_out(tmp_path):
    """REFUGE: Training400/Glaucoma/g0001.jpg with Annotation-Training400/Disc_Cup_Masks/
    Glaucoma/g0001.bmp, masks grey levels (0 cup, 128 disc, 255 background)."""
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "REFUGE"
    for group, letter in (("Glaucoma", "g"), ("Non-Glaucoma", "n")):
        for number in range(1, 4):
            image, _ = scene(number)
            (root / "Training400" / group).mkdir(parents=True, exist_ok=True)
            masks = root / "Annotation-Training400" / "Disc_Cup_Masks" / group
            masks.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(root / "Training400" / group / f"{letter}{number:04d}.jpg")
            mask = np.full(image.shape[:2], 255, np.uint8)
            mask[4:16, 4:16], mask[8:12, 8:12] = 128, 0
            Image.fromarray(mask).save(masks / f"{letter}{number:04d}.bmp")
    index = index_pairs(root)
    pairs = index.splits["train"] + index.splits["val"]
    assert len(pairs) == 6 and all(p.image.stem == p.mask.stem for p in pairs)
    assert {p.image.parent.name for p in index.splits["val"]} == {"Glaucoma", "Non-Glaucoma"}
    (mask,) = _read_masks(pairs[0], binary=False)
    assert set(np.unique(mask)) == {0, 128, 255}


def test_the_folder_named_as_images_is_the_images_beside_other_folders_of_images(tmp_path):
    """NuInsSeg: a folder per organ of tissue images/ beside label masks modify/ (16-bit
    nuclei), mask binary/, distance maps & weight maps/ and vague areas/."""
    from visionsuite.tasks.segment.index import index_pairs

    for organ in ("human bladder", "human brain"):
        folder = tmp_path / "NuInsSeg" / organ
        for sub in ("tissue images", "label masks modify", "mask binary",
                    "distance maps & weight maps", "vague areas/mask binary"):
            (folder / sub).mkdir(parents=True)
        for number in range(1, 4):
            image, colours = scene(number)
            cells = (colours.max(axis=-1) > 0).astype(np.uint8)
            stem = f"{organ.split()[-1]}_{number}"
            Image.fromarray(image).save(folder / "tissue images" / f"{stem}.png")
            Image.fromarray(cells.astype(np.uint16) * number).save(
                folder / "label masks modify" / f"{stem}.tif")
            for other in ("mask binary", "distance maps & weight maps", "vague areas/mask binary"):
                Image.fromarray(cells * 255).save(folder / other / f"{stem}.png")
    pairs = [p for split in index_pairs(tmp_path / "NuInsSeg").splits.values() for p in split]
    assert len(pairs) == 6 and {p.image.parent.name for p in pairs} == {"tissue images"}
    assert {p.mask.parent.name for p in pairs} == {"label masks modify"}


def test_a_set_inside_an_archives_wrapper_folder_is_found_in_it(tmp_path):
    """BTCV unpacks to RawData/Training/{img,label}/ beside a readme: --data names the
    archive's folder. A lone train/ is a split, not a wrapper, and a table beside the one
    folder makes it a dataset's own folder."""
    from visionsuite.tasks.segment.index import index_pairs

    inner = camvid(tmp_path / "btcv" / "RawData", {"train": 3, "val": 2})
    (tmp_path / "btcv" / "README.md").write_text("Multi-atlas labelling beyond the cranial vault")
    index = index_pairs(tmp_path / "btcv")
    assert index.root == inner and [len(index.splits[s]) for s in ("train", "val")] == [3, 2]
    import shutil

    from test_segment import make_segment_folder

    lone = make_segment_folder(tmp_path / "lone", train=5)
    shutil.rmtree(lone / "val")
    assert index_pairs(lone).split_by_fraction  # its train/ split by fraction, as ever
    (tmp_path / "btcv" / "metadata.csv").write_text("case,age\n1,40\n")
    with pytest.raises(VisionsuiteError, match="expected images/ and masks/ folders"):
        index_pairs(tmp_path / "btcv")


def test_split_and_kind_named_folders_side_by_side_pair_as_kaggle_and_tn3k_lay_them_out(
        tmp_path):
    """train_images/ with train_masks/ (val_ likewise, a test_images/ of images alone), and
    TN3K's trainval-image/ with trainval-mask/ and test-image/ with test-mask/."""
    from visionsuite.tasks.segment.index import index_pairs

    def folders(root: Path, kinds: dict[str, tuple[str | None, int]]) -> Path:
        """{images folder: (its masks folder or None, how many)}."""
        for images, (masks, count) in kinds.items():
            for number in range(count):
                image, mask = scene(number)
                for folder, array in ((images, image), (masks, mask)):
                    if folder is not None:
                        (root / folder).mkdir(parents=True, exist_ok=True)
                        Image.fromarray(array).save(root / folder / f"{folder[:2]}{number}.png")
        return root

    kaggle = folders(tmp_path / "kaggle", {"train_images": ("train_masks", 4),
                                           "val_images": ("val_masks", 2),
                                           "test_images": (None, 2)})
    index = index_pairs(kaggle)
    assert [len(index.splits[s]) for s in ("train", "val")] == [4, 2]
    assert "val: images: val_images/, masks: val_masks/" in index.folders
    tn3k = folders(tmp_path / "tn3k", {"trainval-image": ("trainval-mask", 5),
                                       "test-image": ("test-mask", 2)})
    index = index_pairs(tn3k)  # test/ serves as val where there is no val/, as ever
    assert [len(index.splits[s]) for s in ("train", "val")] == [5, 2]
    test = index_pairs(tn3k, 0.2, held_out="test")
    assert {p.mask.parent.name for p in test.splits["val"]} == {"test-mask"}
