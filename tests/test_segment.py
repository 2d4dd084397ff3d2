"""Segmentation: pairing, mask values, ROI, tiling, metrics and loss, on tiny arrays."""

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.index import index_pairs
from visionsuite.tasks.segment.mask_classes import IGNORE, class_map
from visionsuite.tasks.segment.metrics import segmentation_metrics
from visionsuite.tasks.segment.tiles import sliding_window


def make_segment_folder(root: Path, train: int = 4, val: int = 2, size=(40, 30),
                        mask_ext: str = ".png", roi: bool = False) -> Path:
    """A tiny dataset: a bright disc (foreground, 255) on a dark noisy background."""
    rng = np.random.default_rng(0)
    width, height = size
    for split, count in (("train", train), ("val", val)):
        for folder in ("images", "masks") + (("roi",) if roi else ()):
            (root / split / folder).mkdir(parents=True, exist_ok=True)
        for index in range(count):
            yy, xx = np.mgrid[:height, :width]
            disc = (yy - height / 2) ** 2 + (xx - width / 2 - index) ** 2 < (height / 4) ** 2
            image = np.clip(60 + 120 * disc + rng.normal(0, 10, disc.shape), 0, 255)
            Image.fromarray(image.astype(np.uint8)).save(root / split / "images" / f"{index}.png")
            Image.fromarray(disc.astype(np.uint8) * 255).save(
                root / split / "masks" / f"{index}{mask_ext}")
            if roi:
                inside = np.zeros_like(disc)
                inside[:, : width // 2] = True
                Image.fromarray(inside.astype(np.uint8) * 255).save(
                    root / split / "roi" / f"{index}.png")
    return root


def test_pairs_by_stem_with_masks_of_another_format(tmp_path):
    root = make_segment_folder(tmp_path / "d", mask_ext=".gif")
    index = index_pairs(root)
    assert [p.image.name for p in index.splits["train"]] == ["0.png", "1.png", "2.png", "3.png"]
    assert all(p.mask.suffix == ".gif" for p in index.splits["val"])


def test_a_folder_without_val_or_with_test_alone_is_all_val_when_evaluated_on(tmp_path):
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = make_segment_folder(tmp_path / "d")
    for path in (root / "val").rglob("*.png"):  # one folder of pairs, as a test set comes
        path.rename(root / "train" / path.parent.name / f"v{path.name}")
    shutil.rmtree(root / "val")
    assert [len(index_pairs(root, 0.2).splits[s]) for s in ("train", "val")] == [5, 1]
    assert [len(index_pairs(root, 1.0).splits[s]) for s in ("train", "val")] == [0, 6]
    (root / "train").rename(root / "test")  # a test set that ships its test/ alone
    assert [len(index_pairs(root, 1.0).splits[s]) for s in ("train", "val")] == [0, 6]
    report = check_segmentation_folders(str(root))
    assert report.usable and "  no train/ folder: a test set" in report.text, report.text


def test_masks_named_with_an_ending_they_share_pair_with_their_images(tmp_path):
    root = make_segment_folder(tmp_path / "d", mask_ext="_segmentation.png", roi=True)
    for roi in sorted((root / "train" / "roi").iterdir()):  # DRIVE's field of view: 21_mask.gif
        roi.rename(roi.with_name(f"{roi.stem}_mask.gif"))
    pairs = index_pairs(root).splits["train"]
    assert [(p.image.name, p.mask.name, p.roi.name) for p in pairs][:2] == [
        ("0.png", "0_segmentation.png", "0_mask.gif"),
        ("1.png", "1_segmentation.png", "1_mask.gif")]
    # One mask named otherwise, without a number, leaves the pairs unmade, said clearly.
    (root / "val" / "masks" / "1_segmentation.png").rename(root / "val" / "masks" / "seg.png")
    with pytest.raises(VisionsuiteError, match=r"val: unpaired files: 2 image\(s\) without a "
                                               r"mask \(0, 1\); .*ending all masks share"):
        index_pairs(root)


def test_drive_as_it_comes_pairs_by_the_number_in_its_names(tmp_path):
    """DRIVE's own folders: training/ and test/, each with images/, 1st_manual/ (the labels)
    and mask/ (the field of view): 21_training.tif, 21_manual1.gif, 21_training_mask.gif."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = make_segment_folder(tmp_path / "d", train=3, val=2, roi=True)
    for split, first, kind in (("train", 21, "training"), ("val", 1, "test")):
        folder = root / split
        for index in range(3 if split == "train" else 2):
            number = f"{first + index:02d}"
            (folder / "images" / f"{index}.png").rename(folder / "images" / f"{number}_{kind}.png")
            (folder / "masks" / f"{index}.png").rename(folder / "masks" / f"{number}_manual1.png")
            (folder / "roi" / f"{index}.png").rename(folder / "roi" / f"{number}_{kind}_mask.png")
        (folder / "masks").rename(folder / "1st_manual")
        (folder / "roi").rename(folder / "mask")
        folder.rename(root / kind)
    index = index_pairs(root)
    assert [(p.image.name, p.mask.name, p.roi.name) for p in index.splits["val"]] == [
        ("01_test.png", "01_manual1.png", "01_test_mask.png"),
        ("02_test.png", "02_manual1.png", "02_test_mask.png")]
    assert len(index.splits["train"]) == 3
    assert check_segmentation_folders(str(root)).text.splitlines()[1:3] == [
        "  train: training/ (masks: 1st_manual/, roi: mask/)",
        "  val: test/ (masks: 1st_manual/, roi: mask/)"]
    # Two masks with one number: no guessing.
    masks = root / "training" / "1st_manual"
    (masks / "22_manual1.png").rename(masks / "21_b.png")
    with pytest.raises(VisionsuiteError, match="training: unpaired files"):
        index_pairs(root)


def test_pair_folders_are_found_in_any_case(tmp_path):
    """Images/ and Masks/ as some Kaggle sets name them; before, 'images/ is missing'."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = make_segment_folder(tmp_path / "d", roi=True)
    for split in ("train", "val"):
        for name in ("images", "masks", "roi"):
            (root / split / name).rename(root / split / name.upper())
    index = index_pairs(root)
    assert [p.image.parent.name for p in index.splits["train"]] == ["IMAGES"] * 4
    assert index.splits["val"][0].roi.parent.name == "ROI"
    assert check_segmentation_folders(str(root)).text.splitlines()[1] == \
        "  train: train/ (images: IMAGES/, masks: MASKS/, roi: ROI/)"


def test_hrf_as_it_comes_is_one_folder_split_by_val_fraction(tmp_path):
    """HRF: images/01_dr.JPG, manual1/01_dr.tif (labels), mask/01_dr_mask.tif (field of view),
    no train/ or val/; a mask/ folder beside no other label folder holds the labels."""
    root = make_segment_folder(tmp_path / "d", train=5, val=0, roi=True) / "train"
    for index in range(5):
        (root / "roi" / f"{index}.png").rename(root / "roi" / f"{index}_mask.png")
    (root / "masks").rename(root / "manual1")
    (root / "roi").rename(root / "mask")
    index = index_pairs(root)
    assert index.folders == ["pairs: ./ (masks: manual1/, roi: mask/)"]
    assert sorted(p.mask.name for p in index.splits["train"] + index.splits["val"]) == [
        f"{i}.png" for i in range(5)]
    assert all(p.roi.name.endswith("_mask.png") for p in index.splits["train"])
    shutil.rmtree(root / "manual1")
    pairs = index_pairs(root, 0.2).splits["train"]
    assert pairs[0].mask.parent.name == "mask" and pairs[0].roi is None


def _save_disc(path: Path, shift: int, mask: bool) -> None:
    """A 30x40 disc image, or its 0/255 mask, moved `shift` px to the right."""
    yy, xx = np.mgrid[:30, :40]
    disc = (yy - 15) ** 2 + (xx - 20 - shift) ** 2 < 8 ** 2
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((disc * 255 if mask else 60 + 120 * disc).astype(np.uint8)).save(path)


def test_masks_beside_their_images_pair_in_each_folder_and_each_patient_stays_on_one_side(
        tmp_path):
    """LGG MRI as Kaggle ships it: one folder per patient, TCGA_X_1.tif beside TCGA_X_1_mask.tif,
    no train/ or val/. A patient's slices are all train or all val."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "kaggle_3m"
    for patient in range(12):
        for slice_number in (1, 2, 10):
            stem = root / f"TCGA_{patient:02d}" / f"TCGA_{patient:02d}_{slice_number}"
            _save_disc(stem.with_suffix(".tif"), slice_number, mask=False)
            _save_disc(stem.with_name(stem.name + "_mask.tif"), slice_number, mask=True)
    index = index_pairs(root, 0.2)
    train, val = index.splits["train"], index.splits["val"]
    assert all(p.mask.name == p.image.stem + "_mask.tif" for p in train + val)
    val_patients = {p.image.parent.name for p in val}
    assert len(val_patients) == 2 and len(val) == 6  # round(12 x 0.2) patients, 3 slices each
    assert not val_patients & {p.image.parent.name for p in train}
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert ("  masks beside their images (<name>_mask): 36 pairs in 12 folder(s); the val split "
            "takes whole folders (each one case, kept on one side)") in report.text.splitlines()
    for mask in root.rglob("*_mask.tif"):  # images alone: neither layout
        mask.unlink()
    with pytest.raises(VisionsuiteError, match=r"kaggle_3m: expected images/ and masks/ folders, "
                                               r"or masks beside their images named after them"):
        index_pairs(root, 0.2)


def test_k_folds_hold_each_pair_out_once_and_each_case_whole(tmp_path):
    """data.folds / data.fold: the folds of one seed are disjoint val splits that together
    hold every pair once, about equal; a case folder (a patient) stays in one fold."""
    from visionsuite.core.splits import Fold

    root = make_segment_folder(tmp_path / "d", train=11, val=0) / "train"
    vals = [{p.image.name for p in index_pairs(root, Fold(k, 5), seed=3).splits["val"]}
            for k in range(5)]
    assert sorted(len(val) for val in vals) == [2, 2, 2, 2, 3]
    assert set.union(*vals) == {f"{i}.png" for i in range(11)}
    assert sum(len(val) for val in vals) == 11  # disjoint
    first = index_pairs(root, Fold(0, 5), seed=3)
    assert {p.image.name for p in first.splits["train"]} == {f"{i}.png" for i in range(11)} - \
        vals[0]

    patients = tmp_path / "kaggle_3m"
    for patient in range(12):
        for slice_number in (1, 2):
            stem = patients / f"TCGA_{patient:02d}" / f"TCGA_{patient:02d}_{slice_number}"
            _save_disc(stem.with_suffix(".tif"), slice_number, mask=False)
            _save_disc(stem.with_name(stem.name + "_mask.tif"), slice_number, mask=True)
    held = [index_pairs(patients, Fold(k, 4)).splits["val"] for k in range(4)]
    cases = [{p.image.parent.name for p in val} for val in held]
    assert [len(case) for case in cases] == [3, 3, 3, 3] and len(set.union(*cases)) == 12
    assert all(len(val) == 6 for val in held)  # both slices of each of its 3 patients
    with pytest.raises(VisionsuiteError, match="holds no pairs: 11 pairs are too few"):
        index_pairs(root, Fold(11, 12))


def test_k_fold_settings_are_checked_and_a_set_with_its_own_val_is_refused(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks import get_task

    split = make_segment_folder(tmp_path / "d", train=6, val=2)
    task = get_task("segment")
    for sets, message in ((("data.folds=5", "data.fold=5"), "a fold from 0 to folds - 1"),
                          (("data.folds=1",), "2 folds or more"),
                          (("data.fold=2",), "data.fold=2: a fold of what")):
        config = load_config("segment", overrides={"data.path": str(split)}, sets=sets)
        with pytest.raises(VisionsuiteError, match=message):
            task.load_data(config)
    config = load_config("segment", overrides={"data.path": str(split)}, sets=("data.folds=3",))
    with pytest.raises(VisionsuiteError, match="has a val split of its own"):
        task.load_data(config)
    config = load_config("segment", overrides={"data.path": str(split / "train")},
                         sets=("data.folds=3", "data.fold=1"))
    data = task.load_data(config)
    assert (len(data.train), len(data.val)) == (4, 2)
    assert data.source.endswith("val: fold 1 of 3 (seed 0)")


def test_masks_beside_their_images_merge_a_second_lesions_mask_and_split_each_class_folder(
        tmp_path):
    """BUSI as it comes: benign/, malignant/ and normal/ folders of 'benign (1).png' beside
    'benign (1)_mask.png' and, for a second lesion, 'benign (1)_mask_1.png'."""
    from visionsuite.tasks.segment.decode import decode_pair

    root = tmp_path / "Dataset_BUSI_with_GT"
    for kind, count in (("benign", 5), ("malignant", 2), ("normal", 3)):
        for number in range(1, count + 1):
            _save_disc(root / kind / f"{kind} ({number}).png", number, mask=False)
            _save_disc(root / kind / f"{kind} ({number})_mask.png", number, mask=True)
    _save_disc(root / "benign" / "benign (1)_mask_1.png", -10, mask=True)
    index = index_pairs(root, 0.2)
    train, val = index.splits["train"], index.splits["val"]
    assert sorted(p.image.parent.name for p in val) == ["benign", "malignant", "normal"]
    assert len(train) == 7 and index.folders[-2].endswith("the val split takes its share of "
                                                          "each folder")
    assert index.folders[-1].startswith("masks merged: 1 image(s) have several mask files")
    first = next(p for p in train + val if p.image.name == "benign (1).png")
    assert first.mask.name == "benign (1)_mask.png"
    assert [m.name for m in first.more_masks] == ["benign (1)_mask_1.png"]
    mask = decode_pair(first, 3, None, False)[0].mask
    one, other = (np.asarray(Image.open(root / "benign" / f"benign (1)_mask{e}.png")) > 0
                  for e in ("", "_1"))
    assert np.array_equal(mask > 0, one | other) and (one & ~other).any()  # the union
    # An image without its mask, or a mask without its image, is named.
    (root / "normal" / "normal (2)_mask.png").unlink()
    with pytest.raises(VisionsuiteError, match=r"unpaired files: 1 image\(s\) without a "
                                               r"<name>_mask beside them \(normal/normal \(2\)"):
        index_pairs(root, 0.2)


@pytest.mark.parametrize("images, masks, ending", [
    ("Original", "Ground Truth", ""),  # CVC-ClinicDB as it comes
    ("ISIC2018_Task1-2_Training_Input", "ISIC2018_Task1_Training_GroundTruth", "_segmentation"),
    ("CXR_png", "masks", "_mask"),  # Shenzhen chest X-rays on Kaggle
    ("image", "mask", ""),  # a retina set on Kaggle: train/image/, train/mask/
])
def test_a_folder_of_images_beside_one_named_as_masks_pairs_under_any_names(tmp_path, images,
                                                                            masks, ending):
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "set"
    for number in range(1, 6):
        _save_disc(root / images / f"{number}.png", number, mask=False)
        _save_disc(root / masks / f"{number}{ending}.png", number, mask=True)
    (root / images / "LICENSE.txt").write_text("CC-BY-NC")
    index = index_pairs(root, 0.2)
    pairs = index.splits["train"] + index.splits["val"]
    assert sorted((p.image.parent.name, p.mask.name) for p in pairs) == [
        (images, f"{n}{ending}.png") for n in range(1, 6)]
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    named = [f"images: {images}/"] + ([f"masks: {masks}/"] if masks != "masks" else [])
    split_named = "Training" in images  # ISIC's names say the split: a train split's folders
    shown = f"  train: {', '.join(named)}" if split_named else f"  pairs: ./ ({', '.join(named)})"
    assert shown in report.text.splitlines()
    (root / "notes").mkdir()  # a folder of no images is not taken for the images
    (root / "notes" / "README.txt").write_text("segmented by two readers")
    assert len(index_pairs(root, 0.2).splits["val"]) == 1
    _save_disc(root / "previews" / "1.png", 1, mask=False)  # which images are meant is not told
    if split_named:  # ... unless the folders' names tell it: a split's
        assert len(index_pairs(root, 0.2).splits["train"]) == 4
        return
    if images in ("Original", "image"):  # ... or the images' (NuInsSeg's tissue images/)
        assert {p.image.parent.name for s in index_pairs(root, 0.2).splits.values()
                for p in s} == {images}
        return
    with pytest.raises(VisionsuiteError, match="expected images/ and masks/ folders"):
        index_pairs(root, 0.2)


def test_an_images_folder_linked_from_elsewhere_in_the_dataset_pairs(tmp_path):
    """Links that stay inside the dataset are followed; only links out of it are refused."""
    import os

    root = tmp_path / "linked"
    for split, numbers in (("train", range(1, 5)), ("val", range(5, 7))):
        for number in numbers:
            _save_disc(root / "pool" / split / f"{number}.png", number, mask=False)
            _save_disc(root / split / "Ground Truth" / f"{number}.png", number, mask=True)
        os.symlink(f"../pool/{split}", root / split / "Original")
    index = index_pairs(root)
    assert [p.image.name for p in index.splits["val"]] == ["5.png", "6.png"]


def test_two_observers_label_folders_pair_the_images_with_the_first(tmp_path):
    """STARE as it comes: stare-images/im0001.ppm, labels-ah/im0001.ah.ppm (Hoover's labels, the
    ones results are scored on) and labels-vk/im0001.vk.ppm."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "stare"
    for number in range(1, 5):
        _save_disc(root / "stare-images" / f"im{number:04d}.ppm", number, mask=False)
        for observer in ("vk", "ah"):
            _save_disc(root / f"labels-{observer}" / f"im{number:04d}.{observer}.ppm", number,
                       mask=True)
    pairs = [pair for split in index_pairs(root, 0.25).splits.values() for pair in split]
    assert sorted(p.mask.name for p in pairs) == [f"im{n:04d}.ah.ppm" for n in range(1, 5)]
    assert "  pairs: ./ (images: stare-images/, masks: labels-ah/, left out: labels-vk/)" \
        in check_segmentation_folders(str(root)).text.splitlines()


def test_a_folder_per_image_with_a_mask_per_object_pairs_each_image_with_their_union(
        tmp_path):
    """The 2018 Data Science Bowl's nuclei: stage1_train/<id>/images/<id>.png beside
    stage1_train/<id>/masks/<hash>.png, one file per nucleus."""
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.decode import decode_pair

    root = tmp_path / "stage1_train"
    for case in range(12):
        name = f"{case:02d}f3a9"
        _save_disc(root / name / "images" / f"{name}.png", case % 5, mask=False)
        for nucleus, shift in enumerate((-9, 9)):
            _save_disc(root / name / "masks" / f"{nucleus}e{case}b.png", shift, mask=True)
    index = index_pairs(root, 0.2)
    train, val = index.splits["train"], index.splits["val"]
    assert len(train) == 10 and len(val) == 2 and all(len(p.more_masks) == 1 for p in val)
    mask = decode_pair(val[0], 3, None, False)[0].mask
    one, other = (np.asarray(Image.open(path)) > 0 for path in (val[0].mask, *val[0].more_masks))
    assert np.array_equal(mask > 0, one | other) and (one & ~other).any()
    assert "  masks merged: 12 image(s) have several mask files (24 in all, one per object or " \
        "lesion), read as their union" in check_segmentation_folders(str(root)).text.splitlines()


def test_image_folders_named_alike_but_for_a_number_are_read_as_one(tmp_path):
    """HAM10000 with its segmentations: HAM10000_images_part_1/ and _part_2/ beside
    HAM10000_segmentations_lesion_tschandl/ (ISIC_0024306_segmentation.png) and the metadata
    CSV. Before: 'expected images/ and masks/ folders'. A stem in both parts is an error."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "HAM10000"
    for number in range(12):
        part = f"HAM10000_images_part_{1 + number // 6}"
        name = f"ISIC_{24306 + number:07d}"
        _save_disc(root / part / f"{name}.jpg", number % 5, mask=False)
        _save_disc(root / "HAM10000_segmentations_lesion_tschandl" / f"{name}_segmentation.png",
                   number % 5, mask=True)
    (root / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\nHAM_1,ISIC_0024306,bkl\n")
    index = index_pairs(root, 0.2)
    pairs = index.splits["train"] + index.splits["val"]
    assert len(pairs) == 12 and {p.image.parent.name for p in pairs} == {
        "HAM10000_images_part_1", "HAM10000_images_part_2"}
    assert all(p.mask.name == f"{p.image.stem}_segmentation.png" for p in pairs)
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  pairs: ./ (images: HAM10000_images_part_1/ + HAM10000_images_part_2/, masks: " \
        "HAM10000_segmentations_lesion_tschandl/)" in report.text.splitlines()
    shutil.copy(root / "HAM10000_images_part_1" / "ISIC_0024306.jpg",
                root / "HAM10000_images_part_2")
    with pytest.raises(VisionsuiteError, match="the stem 'ISIC_0024306' is also in "
                       "HAM10000_images_part_1/; pairing is by stem"):
        index_pairs(root, 0.2)


def test_files_named_after_their_image_beside_it_are_left_out_and_counted(tmp_path):
    """ISIC 2017 as it unpacks: ISIC-2017_Training_Data/ holds each photo's superpixels
    (ISIC_0000000_superpixels.png beside ISIC_0000000.jpg) and a metadata CSV, beside
    ISIC-2017_Training_Part1_GroundTruth/. Before: 'unpaired files: 6 image(s) without a
    mask (ISIC_0000000_superpixels, ...)'. An image of another name without a mask still is."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "isic2017"
    for split, first in (("Training", 0), ("Validation", 100)):
        for number in range(first, first + 4):
            name = f"ISIC_{number:07d}"
            _save_disc(root / f"ISIC-2017_{split}_Data" / f"{name}.jpg", number % 5, mask=False)
            _save_disc(root / f"ISIC-2017_{split}_Data" / f"{name}_superpixels.png", 0,
                       mask=False)
            _save_disc(root / f"ISIC-2017_{split}_Part1_GroundTruth" /
                       f"{name}_segmentation.png", number % 5, mask=True)
        (root / f"ISIC-2017_{split}_Data" / f"ISIC-2017_{split}_Data_metadata.csv").write_text(
            "image_id,age_approximate,sex\n")
    index = index_pairs(root)
    assert [len(index.splits[split]) for split in ("train", "val")] == [4, 4]
    pair = index.splits["val"][0]
    assert (pair.image.name, pair.mask.name) == ("ISIC_0000100.jpg",
                                                 "ISIC_0000100_segmentation.png")
    assert [path.name for path in pair.left_out] == ["ISIC_0000100_superpixels.png"]
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  left out, one image and one mask making a pair: the files ending _superpixels (8)" \
        in report.text.splitlines()
    _save_disc(root / "ISIC-2017_Training_Data" / "ISIC_0000009.jpg", 0, mask=False)
    with pytest.raises(VisionsuiteError, match=r"1 image\(s\) without a mask \(ISIC_0000009\)"):
        index_pairs(root)


def test_ph2s_case_folders_of_folders_named_after_each_case_pair(tmp_path):
    """PH2 (dermoscopy) as it unpacks: PH2Dataset/PH2 Dataset images/IMD002/ holding
    IMD002_Dermoscopic_Image/IMD002.bmp, IMD002_lesion/IMD002_lesion.bmp and IMD002_roi/ (its
    colour regions), beside PH2_dataset.txt and .xlsx. Before: 'expected images/ and
    masks/ folders'. The 1-bit BMP masks read as 0/255."""
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.decode import decode_pair

    root = tmp_path / "PH2Dataset"
    for number in range(2, 14):
        case = root / "PH2 Dataset images" / f"IMD{number:03d}"
        _save_disc(case / f"{case.name}_Dermoscopic_Image" / f"{case.name}.bmp", number % 5,
                   mask=False)
        lesion = case / f"{case.name}_lesion" / f"{case.name}_lesion.bmp"
        _save_disc(lesion, number % 5, mask=True)
        Image.open(lesion).convert("1").save(lesion)
        _save_disc(case / f"{case.name}_roi" / f"{case.name}_R1_Label4.bmp", 0, mask=True)
    for document in ("PH2_dataset.txt", "PH2_dataset.xlsx"):
        (root / document).write_bytes(b"diagnosis")
    index = index_pairs(root, 0.2)
    train, val = index.splits["train"], index.splits["val"]
    assert len(train) == 10 and len(val) == 2  # each case one side
    pair = val[0]
    assert pair.image.name == f"{pair.image.parents[1].name}.bmp"
    assert pair.mask.name == f"{pair.image.parents[1].name}_lesion.bmp"
    mask = decode_pair(pair, 3, None, False)[0].mask
    assert set(np.unique(mask)) == {0, 255}
    assert np.array_equal(mask > 0, np.asarray(Image.open(pair.mask)) > 0)
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  left out, one image and one mask making a pair: the folders ending _roi (12)" \
        in report.text.splitlines()


@pytest.mark.parametrize("images,masks,train,val", [
    ("img_dir", "ann_dir", "train", "val"),  # mmsegmentation's own layout
    ("images", "annotations", "training", "validation")])  # ADE20K, mmseg's DRIVE, CHASE_DB1
def test_split_folders_inside_the_images_and_masks_folders_are_the_splits(tmp_path, images,
                                                                          masks, train, val):
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "set"
    for split, numbers in ((train, range(1, 5)), (val, range(5, 7))):
        for number in numbers:
            _save_disc(root / images / split / f"{number:02d}.png", number, mask=False)
            _save_disc(root / masks / split / f"{number:02d}.png", number, mask=True)
    index = index_pairs(root, 0.2)
    assert not index.split_by_fraction
    assert [p.image.stem for p in index.splits["val"]] == ["05", "06"]
    assert all(p.mask.parent == root / masks / train for p in index.splits["train"])
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert f"  val: images: {images}/{val}/, masks: {masks}/{val}/" in report.text.splitlines()
    (root / masks / val / "05.png").unlink()
    with pytest.raises(VisionsuiteError, match=rf"{images}/{val}: unpaired files: 1 image\(s\) "
                       r"without a mask \(05\)"):
        index_pairs(root, 0.2)


def test_idrid_as_it_comes_pairs_its_splits_and_lesion_classes(tmp_path):
    """IDRiD's lesion segmentation: 1. Original Images/a. Training Set/IDRiD_01.jpg, and a
    folder per lesion under 2. All Segmentation Groundtruths/a. Training Set/, each mask named
    with the lesion's ending (IDRiD_01_MA.tif); not every image has every lesion."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "A. Segmentation"
    truths = root / "2. All Segmentation Groundtruths"
    for split, numbers in (("a. Training Set", (1, 2, 3)), ("b. Testing Set", (55, 56))):
        for number in numbers:
            _save_disc(root / "1. Original Images" / split / f"IDRiD_{number:02d}.jpg", 0,
                       mask=False)
            for lesion, ending, shift in (("1. Microaneurysms", "MA", -6),
                                          ("4. Soft Exudates", "SE", 6)):
                if ending == "MA" or number % 2:
                    _save_disc(truths / split / lesion / f"IDRiD_{number:02d}_{ending}.tif",
                               shift, mask=True)
    index = index_pairs(root, 0.2)
    assert index.class_names == ["background", "1. Microaneurysms", "4. Soft Exudates"]
    assert [p.image.name for p in index.splits["val"]] == ["IDRiD_55.jpg", "IDRiD_56.jpg"]
    assert [p.class_masks[1][1] is None for p in index.splits["val"]] == [False, True]
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  val: images: 1. Original Images/b. Testing Set/, masks: 2. All Segmentation " \
        "Groundtruths/b. Testing Set/" in report.text.splitlines()


def test_a_masks_folder_of_a_folder_per_class_makes_those_classes(tmp_path, capsys):
    """Montgomery's chest X-rays as they come: CXR_png/MCUCXR_0001_0.png with its lungs in
    ManualMask/leftMask/ and ManualMask/rightMask/, beside ClinicalReadings/ of text."""
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.decode import decode_pair

    root = tmp_path / "MontgomerySet"
    for number in range(1, 6):
        stem = f"MCUCXR_{number:04d}_0"
        _save_disc(root / "CXR_png" / f"{stem}.png", 0, mask=False)
        _save_disc(root / "ManualMask" / "rightMask" / f"{stem}.png", 6, mask=True)
        _save_disc(root / "ManualMask" / "leftMask" / f"{stem}.png", -6, mask=True)
        (root / "ClinicalReadings").mkdir(exist_ok=True)
        (root / "ClinicalReadings" / f"{stem}.txt").write_text("Patient's Sex: F")
    (root / "NLM-MontgomeryCXRSet-ReadMe.pdf").write_bytes(b"%PDF-1.4")
    index = index_pairs(root, 0.2)
    assert index.class_names == ["background", "leftMask", "rightMask"]
    pair = index.splits["val"][0]
    mask = decode_pair(pair, 3, None, False)[0].mask
    left, right = (np.asarray(Image.open(path)) > 0 for _, path in pair.class_masks)
    assert np.array_equal(mask, np.where(right, 2, np.where(left, 1, 0)))
    assert (left & right).any()  # the discs are alike: the later class is kept where they meet
    # A smaller mask stays over a larger one of a later class (clavicles over the lungs).
    small = np.zeros((30, 40), np.uint8)
    small[13:17, 10:20] = 255
    Image.fromarray(small).save(pair.class_masks[0][1])
    mask = decode_pair(pair, 3, None, False)[0].mask
    assert (mask[13:17, 10:20] == 1).all() and ((mask == 2) == (right & ~(small > 0))).all()
    left = small > 0
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    lines = report.text.splitlines()
    assert "  pairs: ./ (images: CXR_png/, masks: ManualMask/)" in lines
    assert "  classes from the masks' folders: leftMask, rightMask (0 background; where two " \
        "mark a pixel, the smaller mask's class)" in lines
    assert any(line.startswith("classes (named in the masks' folders): 0 background (")
               and "2 rightMask (" in line for line in lines)
    TASK.load_data(load_config("segment", overrides={"data.path": str(root)}))
    assert "warning: classes leftMask, rightMask name sides, which augment.flip and " \
        "augment.rotate90 move to the other side of the image; --set augment.flip=0 --set " \
        "augment.rotate90=0 keeps the sides apart" in capsys.readouterr().err
    TASK.load_data(load_config("segment", overrides={"data.path": str(root)},
                               sets=["augment.flip=0", "augment.rotate90=0"]))
    assert "name sides" not in capsys.readouterr().err
    union = TASK.load_data(load_config("segment", overrides={"data.path": str(root)},
                                       sets=["data.binary_masks=true"]))
    assert union.labels == ["background", "foreground"]
    assert np.array_equal(union.val.targets[0], (left | right).astype(np.uint8))
    # A class absent from an image (a lesion it does not have) is an image without its file.
    (root / "ManualMask" / "rightMask" / "MCUCXR_0002_0.png").unlink()
    pairs = {p.image.stem: p for split in index_pairs(root, 0.2).splits.values() for p in split}
    assert pairs["MCUCXR_0002_0"].class_masks[1] == ("rightMask", None)
    assert "images without a file of a class have none of it: rightMask (1)" \
        in check_segmentation_folders(str(root)).text
    _save_disc(root / "ManualMask" / "rightMask" / "MCUCXR_0009_0.png", 9, mask=True)
    with pytest.raises(VisionsuiteError, match=r"unpaired files: 1 mask\(s\) without an "
                       r"image \(MCUCXR_0009_0\)"):
        index_pairs(root, 0.2)
    # Splits of other classes would make class indices that mean other things.
    for split, classes in (("train", ("heart", "lung")), ("val", ("lung",))):
        _save_disc(tmp_path / "scr" / split / "images" / "JPCLN001.png", 0, mask=False)
        for name in classes:
            _save_disc(tmp_path / "scr" / split / "masks" / name / "JPCLN001.png", 0, mask=True)
    with pytest.raises(VisionsuiteError, match=r"the splits' masks are in different class "
                       r"folders \(heart, lung; lung\); each split needs the same"):
        index_pairs(tmp_path / "scr")


def test_masks_beside_their_images_with_another_ending_pair_with_the_first_observers(tmp_path):
    """CHASE_DB1 as it comes: one folder of Image_01L.jpg beside two observers' labels,
    Image_01L_1stHO.png and Image_01L_2ndHO.png. The first observer's are the masks."""
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = tmp_path / "CHASEDB1"
    for number in range(1, 4):
        for eye in "LR":
            stem = f"Image_{number:02d}{eye}"
            _save_disc(root / f"{stem}.jpg", number, mask=False)
            _save_disc(root / f"{stem}_1stHO.png", number, mask=True)
            _save_disc(root / f"{stem}_2ndHO.png", -number, mask=True)
    index = index_pairs(root, 0.2)
    pairs = index.splits["train"] + index.splits["val"]
    assert len(pairs) == 6
    assert all(p.mask.name == p.image.stem + "_1stHO.png" for p in pairs)
    assert all([m.name for m in p.left_out] == [p.image.stem + "_2ndHO.png"] for p in pairs)
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  masks beside their images (<name>_1stHO): 6 pairs in 1 folder(s)" \
        in report.text.splitlines()
    assert "  left out, one image and one mask making a pair: the files ending _2ndHO (6)" \
        in report.text.splitlines()
    (root / "Image_02R_2ndHO.png").unlink()  # a second observer who left one image out
    pairs = [p for split in index_pairs(root, 0.2).splits.values() for p in split]
    assert sum(len(p.left_out) for p in pairs) == 5 and len(pairs) == 6
    for label in root.glob("*_1stHO.png"):  # images of names that merely share a start
        label.unlink()
    (root / "Image_01R_2ndHO.png").unlink()
    with pytest.raises(VisionsuiteError, match="expected images/ and masks/ folders"):
        index_pairs(root, 0.2)


@pytest.mark.parametrize("breakage, message", [
    (lambda r: (r / "train" / "masks" / "1.png").unlink(), "unpaired files: 1 image(s) without "
                                                           "a mask (1)"),
    (lambda r: (r / "val" / "masks" / "9.png").write_bytes(b""), "1 mask(s) without an image (9)"),
    (lambda r: Image.new("L", (4, 4)).save(r / "train" / "images" / "0.bmp"),
     "two files with the stem '0'"),
    (lambda r: shutil.rmtree(r / "val" / "masks"), "masks/ is missing"),
])
def test_broken_pairing_is_one_clear_error(tmp_path, breakage, message):
    root = make_segment_folder(tmp_path / "d")
    breakage(root)
    with pytest.raises(VisionsuiteError, match=message.replace("(", r"\(").replace(")", r"\)")):
        index_pairs(root)


def test_empty_images_folder_is_an_error(tmp_path):
    for folder in ("images", "masks"):
        (tmp_path / "train" / folder).mkdir(parents=True)
        (tmp_path / "val" / folder).mkdir(parents=True)
    with pytest.raises(VisionsuiteError, match="no images in the folder$"):
        index_pairs(tmp_path)
    (tmp_path / "train" / "images" / "a.jxl").write_bytes(b"\xff\x0a JPEG XL, not read here")
    (tmp_path / "train" / "images" / "b.jxl").write_bytes(b"\xff\x0a JPEG XL, not read here")
    with pytest.raises(VisionsuiteError, match=r"folder \(2 files in no image format, e.g. "
                                               r"a.jxl\)$"):
        index_pairs(tmp_path)
    _save_disc(tmp_path / "train" / "images" / "c.png", 0, mask=False)
    (tmp_path / "train" / "masks" / "c.json").write_text("{}")  # polygons: not masks
    with pytest.raises(VisionsuiteError, match=r"train/masks: no masks in the folder \(1 file "
                                               r"in no image format, e.g. c.json\)$"):
        index_pairs(tmp_path)


def test_mask_values_become_classes():
    assert class_map({0, 255}, None).names == ["background", "foreground"]
    assert class_map({0, 255}, None).lookup[255] == 1
    assert class_map({0, 1}, None).lookup[1] == 1
    voc = class_map({0, 1, 2, 255}, None)  # 255 is "ignore" beside class indices
    assert voc.names == ["class_0", "class_1", "class_2"] and voc.lookup[255] == IGNORE
    named = class_map({0, 255}, ["membrane", "cell"])
    assert named.names == ["membrane", "cell"] and named.lookup[255] == 1
    assert class_map({0, 1, 2}, ["a", "b"]).lookup[2] == -1  # outside: refused when applied


def test_grey_levels_that_code_classes_are_the_classes_in_value_order():
    refuge = class_map({0, 128, 255}, None)  # 0 cup, 128 disc, 255 background: all classes
    assert refuge.names == ["value_0", "value_128", "value_255"]
    assert refuge.levels == [0, 128, 255] and refuge.lookup[[0, 128, 255]].tolist() == [0, 1, 2]
    assert class_map({0, 85, 170, 255}, None).levels == [0, 85, 170, 255]
    assert class_map({0, 128}, None).names == ["background", "foreground"]
    named = class_map({0, 128, 255}, ["cup", "disc", "background"])
    assert named.names == ["cup", "disc", "background"] and named.lookup[255] == 2
    given = class_map({0, 128, 255}, ["background", "cup", "disc"], [255, 0, 128])
    assert given.lookup[[255, 0, 128]].tolist() == [0, 1, 2]
    with pytest.raises(VisionsuiteError, match=r"names 2 classes, but the masks code 3 as "
                                               r"grey levels \(\[255, 0, 128\]\)"):
        class_map({0, 128, 255}, ["a", "b"], [255, 0, 128])
    # class indices, with or without 255 as void, are no grey levels
    for values in ({0, 1, 2, 255}, {0, 1, 15, 255}, {0, 255}, {0, 1}, set(range(20))):
        assert class_map(values, None).levels is None
    assert class_map({0, 128, 255}, ["a", "b"]).levels is None  # names of other classes


def test_a_set_of_grey_coded_masks_trains_and_segments_in_its_grey_levels(tmp_path):
    """REFUGE's masks: 0 the optic cup, 128 the disc, 255 the background."""
    from test_cli import invoke
    from test_segment_cli import TINY_SEGMENT

    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for folder in ("images", "masks"):
            (tmp_path / "refuge" / split / folder).mkdir(parents=True)
        for number in range(count):
            mask = np.full((40, 48), 255, np.uint8)
            mask[10:30, 12:34], mask[15:25, 18:28] = 128, 0
            image = np.stack([mask // 2 + rng.integers(0, 30, mask.shape)] * 3, -1)
            Image.fromarray(image.astype(np.uint8)).save(
                tmp_path / "refuge" / split / "images" / f"g{number}.jpg")
            Image.fromarray(mask).save(tmp_path / "refuge" / split / "masks" / f"g{number}.bmp")
    result = invoke("data", "check", "segment", tmp_path / "refuge")
    assert "mask values: 0, 128, 255 (grey levels coding 3 classes, in value order: " \
        "data.mask_values)" in result.output, result.output
    result = invoke("train", "segment", "--data", tmp_path / "refuge", "--output", tmp_path,
                    *TINY_SEGMENT, "--set", "data.classes=[cup, disc, background]")
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["cup", "disc", "background"]
    assert "mask_values:\n  - 0\n  - 128\n  - 255" in (run / "config.yaml").read_text()
    result = invoke("segment", run, tmp_path / "refuge" / "val" / "images", "--output",
                    tmp_path / "out")
    assert result.exit_code == 0, result.output
    written = np.asarray(Image.open(tmp_path / "out" / "g0.png"))
    assert set(np.unique(written)) <= {0, 128, 255}


def test_unexpected_mask_values_name_the_file(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    root = make_segment_folder(tmp_path / "d")
    bad = np.zeros((30, 40), np.uint8)
    bad[:5, :5] = 7
    Image.fromarray(bad).save(root / "val" / "masks" / "1.png")
    config = load_config("segment", overrides={"data.path": str(root)},
                         sets=["data.classes=[background, disc]"])
    with pytest.raises(VisionsuiteError, match=r"1.png: mask values \[7\] are outside the 2 "
                                               r"classes \(background, disc\)"):
        TASK.load_data(config)


def test_size_mismatch_names_the_mask(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    root = make_segment_folder(tmp_path / "d")
    Image.new("L", (20, 20)).save(root / "train" / "masks" / "2.png")
    config = load_config("segment", overrides={"data.path": str(root)})
    with pytest.raises(VisionsuiteError, match="2.png: mask is 20x20 but its image 2.png is 40x30"):
        TASK.load_data(config)


def test_masks_of_every_storage_read_as_values(tmp_path):
    from visionsuite.core.images import UnreadableImage, read_mask

    values = np.array([[0, 255], [255, 0]], np.uint8)
    Image.fromarray(values).convert("P").save(tmp_path / "grey.gif")  # grey palette: values
    assert np.array_equal(read_mask(tmp_path / "grey.gif"), values)
    palette = Image.fromarray(np.array([[0, 1], [2, 1]], np.uint8), "P")
    palette.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)
    palette.save(tmp_path / "voc.png")  # colour palette: class indices
    assert np.array_equal(read_mask(tmp_path / "voc.png"), [[0, 1], [2, 1]])
    Image.fromarray(np.array([[0, 3]], np.uint16)).save(tmp_path / "sixteen.png")
    assert np.array_equal(read_mask(tmp_path / "sixteen.png"), [[0, 3]])
    Image.new("RGB", (2, 2), (200, 10, 10)).save(tmp_path / "colour.png")  # colour codes
    assert np.array_equal(read_mask(tmp_path / "colour.png"), np.full((2, 2), 0xC80A0A))
    assert np.array_equal(read_mask(tmp_path / "colour.png", binary=True), np.full((2, 2), 255))
    Image.new("RGB", (2, 2), (200, 10, 10)).save(tmp_path / "red.jpg")  # binary, any colour
    assert np.array_equal(read_mask(tmp_path / "red.jpg"), np.full((2, 2), 255))
    Image.new("LA", (2, 2), (7, 255)).save(tmp_path / "la.png")
    assert np.array_equal(read_mask(tmp_path / "la.png"), np.full((2, 2), 7))
    Image.fromarray(np.array([[0, 300]], np.uint16)).save(tmp_path / "big.png")
    with pytest.raises(UnreadableImage, match="mask values up to 300"):
        read_mask(tmp_path / "big.png")


def colour_masks(root: Path, colours: dict[str, tuple], grey_empty: str | None = None) -> Path:
    """make_segment_folder's masks redrawn in colour: the disc's left half in colours["left"],
    its right half in colours["right"] (the same colour for a binary set); the mask of image
    `grey_empty`, if named, as an empty grey mask (how an annotator saves "nothing here")."""
    for path in root.rglob("masks/*.png"):
        disc = np.array(Image.open(path)) > 0
        left = np.zeros_like(disc)
        left[:, : disc.shape[1] // 2] = True
        rgb = np.zeros(disc.shape + (3,), np.uint8)
        rgb[disc & left], rgb[disc & ~left] = colours["left"], colours["right"]
        if path.stem == grey_empty:
            Image.new("L", disc.shape[::-1]).save(path)
        else:
            Image.fromarray(rgb).save(path)
    return root


def test_colour_masks_become_classes_black_first(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    red = colour_masks(make_segment_folder(tmp_path / "red"), {"left": (255, 0, 0),
                                                               "right": (255, 0, 0)}, "1")
    config = load_config("segment", overrides={"data.path": str(red)})
    data = TASK.load_data(config)
    assert data.labels == ["background", "foreground"]
    assert config.data.colors == ["#000000", "#ff0000"]  # saved in the run's config.yaml
    discs = [np.array(Image.open(p).convert("L")) > 0
             for p in sorted((red / "val" / "masks").glob("*.png"))]
    assert all(np.array_equal(mask, disc) for mask, disc in zip(data.val.targets, discs))
    both = colour_masks(make_segment_folder(tmp_path / "two"), {"left": (0, 255, 0),
                                                                "right": (255, 0, 0)})
    config = load_config("segment", overrides={"data.path": str(both)})
    assert TASK.load_data(config).labels == ["background", "#00ff00", "#ff0000"]
    mask = TASK.load_data(config).val.targets[0]
    assert set(np.unique(mask[:, :20])) == {0, 1} and set(np.unique(mask[:, 20:])) == {0, 2}


def test_colour_classes_follow_data_colors_and_a_colour_outside_them_names_the_file(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    root = colour_masks(make_segment_folder(tmp_path / "d"), {"left": (0, 255, 0),
                                                              "right": (255, 0, 0)})
    named = ["data.classes=[background, right, left]",
             'data.colors=["#000000", "#ff0000", "#00FF00"]']
    config = load_config("segment", overrides={"data.path": str(root)}, sets=named)
    data = TASK.load_data(config)
    assert data.labels == ["background", "right", "left"]
    assert set(np.unique(data.val.targets[0][:, :20])) == {0, 2}  # left (green) is class 2
    config = load_config("segment", overrides={"data.path": str(root)},
                         sets=['data.colors=["#000000", "#00ff00"]'])
    with pytest.raises(VisionsuiteError, match=r"masks/0.png: colour #ff0000 is none of "
                                               r"data.colors \(#000000, #00ff00\)"):
        TASK.load_data(config)
    config = load_config("segment", overrides={"data.path": str(root)},
                         sets=["data.classes=[background, right, left]"])
    with pytest.raises(VisionsuiteError, match=r"set data.colors to the colour of each of "
                                               r"data.classes.*#000000, #00ff00, #ff0000"):
        TASK.load_data(config)
    config = load_config("segment", overrides={"data.path": str(root)},
                         sets=["data.colors=[000000, ff0000]"])
    with pytest.raises(VisionsuiteError, match="'0' is not a colour"):
        TASK.check_settings(config)


def test_a_smoothed_colour_mask_is_refused_by_name(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    root = make_segment_folder(tmp_path / "d")
    noisy = np.random.default_rng(0).integers(0, 255, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(noisy).save(root / "train" / "masks" / "2.png")
    config = load_config("segment", overrides={"data.path": str(root)})
    with pytest.raises(VisionsuiteError, match=r"2.png: \d+ colours; a colour mask holds one "
                                               "flat colour per class"):
        TASK.load_data(config)


def test_jpeg_masks_are_read_back_binary_despite_compression(tmp_path):
    from visionsuite.core.images import read_mask

    # A polyp mask as Kvasir-SEG stores it: an RGB JPEG whose edges and channels drift.
    mask = np.zeros((64, 80), np.uint8)
    mask[12:40, 20:61] = 255
    Image.fromarray(mask).convert("RGB").save(tmp_path / "polyp.jpg", quality=70)
    stored = np.asarray(Image.open(tmp_path / "polyp.jpg"))
    assert len(np.unique(stored)) > 2  # what a reader of raw values would see
    assert np.array_equal(read_mask(tmp_path / "polyp.jpg"), mask)


def test_instance_masks_train_as_foreground_with_binary_masks(tmp_path, capsys):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.check import check_segmentation_folders

    root = make_segment_folder(tmp_path / "d")
    # Cellpose/StarDist-style 16-bit labels: each cell its own number, up to 300 here.
    cells = np.zeros((30, 40), np.uint16)
    cells[5:15, 5:15], cells[18:25, 20:30] = 7, 300
    for split in ("train", "val"):
        Image.fromarray(cells).save(root / split / "masks" / "0.png")
    as_classes = TASK.load_data(load_config("segment", overrides={"data.path": str(root)},
                                            sets=["data.binary_masks=false"]))
    assert len(as_classes.train) == 3  # that pair is skipped, and the warning says why
    assert "0.png: mask values up to 300; class indices must be 0..255 (if they number " \
           "objects, set data.binary_masks=true); pair skipped" in capsys.readouterr().err
    for sets in ([], ["data.binary_masks=true"]):  # auto: values above 255 number objects
        config = load_config("segment", overrides={"data.path": str(root)}, sets=sets)
        data = TASK.load_data(config)
        assert data.labels == ["background", "foreground"] and config.data.binary_masks is True
        assert np.array_equal(data.train.targets[0], (cells > 0).astype(np.uint8))
    three = load_config("segment", overrides={"data.path": str(root)},
                        sets=["data.binary_masks=true", "data.classes=[bg, cell, nucleus]"])
    with pytest.raises(VisionsuiteError, match="data.classes names 3 classes, but "
                       r"data.binary_masks=true reads masks as 2 \(background, foreground\)"):
        TASK.check_settings(three)
    # 8-bit values that are no numbered objects (each value in many places) are classes,
    # and data check says what to do where they do number objects.
    for mask in sorted(root.glob("*/masks/*.png")):
        numbered = np.arange(30 * 40, dtype=np.uint8).reshape(30, 40) % 40
        Image.fromarray(numbered).save(mask)
    report = check_segmentation_folders(str(root))
    assert "40 classes: if they number objects, set data.binary_masks=true" in report.text


def test_masks_that_number_objects_1_to_n_are_told_from_class_masks():
    from visionsuite.tasks.segment.mask_classes import _numbered_objects

    cells = np.zeros((60, 60), np.uint8)
    for number in range(1, 37):  # 36 cells, one region each
        row, column = divmod(number - 1, 6)
        cells[row * 10 + 1:row * 10 + 8, column * 10 + 1:column * 10 + 8] = number
    assert _numbered_objects(cells) == 36
    gap = np.where(cells == 5, 0, cells)  # 1..36 without 5: classes, or a set's track ids
    assert _numbered_objects(gap) == 0
    spread = np.where(cells > 0, (cells.astype(int) - 1) % 12 + 1, 0)  # 12 classes, 3 places
    assert _numbered_objects(spread.astype(np.uint8)) == 0
    assert _numbered_objects(np.where(cells > 7, 0, cells)) == 0  # too few values to tell


def test_a_cellpose_set_of_8_bit_numbered_masks_trains_as_foreground_without_settings(
        tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.check import check_segmentation_folders

    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for folder in ("images", "masks"):
            (tmp_path / split / folder).mkdir(parents=True)
        for index in range(count):
            image, cells = np.full((48, 48), 20, np.uint8), np.zeros((48, 48), np.uint8)
            places = rng.permutation(36)[:rng.integers(10, 30)]
            for number, place in enumerate(places, 1):
                row, column = divmod(int(place), 6)
                cells[row * 8 + 1:row * 8 + 7, column * 8 + 1:column * 8 + 7] = number
            image[cells > 0] = 200
            Image.fromarray(image).save(tmp_path / split / "images" / f"{index}.png")
            Image.fromarray(cells).save(tmp_path / split / "masks" / f"{index}.png")
    report = check_segmentation_folders(str(tmp_path))
    assert "classes: 0 background" in report.text and "1 foreground" in report.text
    assert "masks number objects 1..N (instance masks): read as foreground" in report.text
    config = load_config("segment", overrides={"data.path": str(tmp_path)})
    data = TASK.load_data(config)
    assert data.labels == ["background", "foreground"] and config.data.binary_masks is True
    named = load_config("segment", overrides={"data.path": str(tmp_path)},
                        sets=["data.classes=[" + ", ".join(f"c{i}" for i in range(40)) + "]"])
    TASK.load_data(named)  # classes named: the values are those classes
    assert named.data.binary_masks is False


def test_roi_pixels_are_ignored_and_16_bit_tiff_images_are_scaled(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    root = make_segment_folder(tmp_path / "d", roi=True)
    sixteen = (np.arange(30 * 40, dtype=np.uint16).reshape(30, 40) * 50)
    Image.fromarray(sixteen).save(root / "train" / "images" / "0.tif")
    (root / "train" / "images" / "0.png").unlink()
    config = load_config("segment", overrides={"data.path": str(root)})
    data = TASK.load_data(config)
    assert data.labels == ["background", "foreground"]
    assert (data.train.targets[0][:, 20:] == IGNORE).all()  # right half is outside the ROI
    assert set(np.unique(data.train.targets[0][:, :20])) <= {0, 1}
    image = data.train.images[0]
    assert image.dtype == np.uint8 and image.max() > 200  # scaled, not clipped or all black
    assert config.data.window == [32767.5, 65535.0]  # values up to 59950: 16-bit
    config = load_config("segment", overrides={"data.path": str(root)})
    TASK.load_data(config, labels=data.labels)  # a trained run's data (export's calibration)
    assert config.data.window is None  # is read as that run was trained, not measured anew
    config = load_config("segment", overrides={"data.path": str(root)},
                         sets=("data.window=[30000, 60000]",))
    TASK.load_data(config)
    assert config.data.window == [30000, 60000]  # the user's window stays
    (root / "train" / "images" / "0.tif").unlink()
    Image.fromarray(image[..., 0]).save(root / "train" / "images" / "0.png")
    config = load_config("segment", overrides={"data.path": str(root)})
    TASK.load_data(config)
    assert config.data.window is None  # 8-bit images: no window to measure


@pytest.mark.parametrize("height, width", [(37, 53), (64, 64), (20, 90), (10, 12)])
def test_tiled_inference_is_seamless_at_any_size(height, width):
    """A per-pixel 'model' must come out of the tiling unchanged, whatever the overlap."""
    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (height, width, 3), np.uint8)

    def per_pixel(tiles):
        foreground = tiles[..., :1].astype(np.float32) / 255.0
        return np.concatenate([1 - foreground, foreground], axis=-1)

    probs = sliding_window(per_pixel, image, tile=16, overlap=0.25)
    assert probs.shape == (height, width, 2)
    assert np.allclose(probs, per_pixel(image[None])[0], atol=1e-5)


def _views_training_makes(flip: int, vflip: int, turn: int) -> set[bytes]:
    """Every view of a 4x4 tile that make_augment makes with these exact operations on."""
    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    tile = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
    views = set()
    for chosen in [(f, v, t) for f in range(flip + 1) for v in range(vflip + 1)
                   for t in range(turn + 1)]:
        config = AugmentConfig(flip=chosen[0], vflip=chosen[1], rotate90=chosen[2], rotate=0,
                               translate=0, zoom=0, brightness=0, contrast=0)
        augmented = make_augment(config)(tile, seed=np.array([1, 2], np.int32))
        views.add(np.asarray(augmented, np.float32)[0, ..., 0].tobytes())
    return views


@pytest.mark.parametrize("flip, vflip, turn", [(f, v, t) for f in (0, 1) for v in (0, 1)
                                               for t in (0, 1)])
def test_tta_averages_over_exactly_the_views_training_showed(flip, vflip, turn):
    """data.tta: the views are those the run's augmentation made (8 with both flips and
    quarter turns, 4 with both flips, 2 with one, ...), and each prediction is turned back:
    an identity "model" averaged over its views gives the tile again."""
    from visionsuite.config import AugmentConfig
    from visionsuite.tasks.segment.tiles import trained_symmetries, with_symmetries

    augment = AugmentConfig(flip=0.5 * flip, vflip=0.5 * vflip, rotate90=0.5 * turn)
    symmetries = trained_symmetries(augment)
    tile = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)  # no symmetry of its own
    seen = []

    def recording(tiles):
        seen.append(tiles[0, ..., 0].tobytes())
        return tiles  # an identity "model": each view turned back is the tile again

    averaged = with_symmetries(recording, symmetries)(tile)
    assert set(seen) == _views_training_makes(flip, vflip, turn)
    assert len(seen) == len(symmetries) == 2 ** (flip + vflip + turn)  # all distinct
    assert np.allclose(averaged, tile)  # so each view was turned back exactly


def test_val_tiles_cover_each_image_reflected_at_its_borders_with_ignored_masks():
    from visionsuite.core.data import TF_ALIGNMENT
    from visionsuite.tasks.base import Split
    from visionsuite.tasks.segment.tiles import val_tiles

    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size, np.uint8) for size in ((20, 30, 3), (40, 16, 3))]
    masks = [np.ones((20, 30), np.uint8), np.full((40, 16), 2, np.uint8)]
    tiles, tile_masks = val_tiles(Split(images, masks, []), 16)
    assert tiles.shape == (2 * 2 + 3, 16, 16, 3) and tile_masks.shape == (7, 16, 16)
    first = np.pad(images[0], [(0, 12), (0, 2), (0, 0)], mode="symmetric")
    second = np.pad(images[1], [(0, 8), (0, 0), (0, 0)], mode="symmetric")
    assert np.array_equal(tiles[3], first[16:, 16:]) and np.array_equal(tiles[6], second[32:])
    assert tile_masks[3, 4:, :].max() == IGNORE and tile_masks[3, :4, :14].max() == 1
    assert set(np.unique(tile_masks[6])) == {2, IGNORE}
    assert tiles.ctypes.data % TF_ALIGNMENT == 0 and tile_masks.ctypes.data % TF_ALIGNMENT == 0


def test_tiled_inference_with_tta_keeps_a_per_pixel_model_unchanged():
    from visionsuite.config import AugmentConfig
    from visionsuite.tasks.segment.tiles import trained_symmetries, with_symmetries

    image = np.random.default_rng(2).integers(0, 256, (37, 53, 3), np.uint8)

    def per_pixel(tiles):
        foreground = tiles[..., :1].astype(np.float32) / 255.0
        return np.concatenate([1 - foreground, foreground], axis=-1)

    every = trained_symmetries(AugmentConfig(flip=0.5, rotate90=0.5))
    probs = sliding_window(with_symmetries(per_pixel, every), image, tile=16, overlap=0.25)
    assert np.allclose(probs, per_pixel(image[None])[0], atol=1e-5)


def test_a_scaled_down_prediction_comes_back_aligned_at_the_images_size():
    """data.max_size: predicted on the image scaled down, the mask is scaled back up in place
    (a disc's prediction lands on the disc, its edges only differ), for 2 and for 3 classes."""
    from visionsuite.core.images import fit_within, fitted_size
    from visionsuite.tasks.segment.commands import _at_own_size

    yy, xx = np.mgrid[:300, :410]
    disc = (yy - 120) ** 2 + (xx - 250) ** 2 < 70 ** 2
    image = np.repeat((disc * 255).astype(np.uint8)[..., None], 3, -1)
    assert fitted_size(300, 410, 100) == (73, 100) and fitted_size(30, 41, 100) == (30, 41)
    small = fit_within(image, 100)
    assert small.shape == (73, 100, 3)
    assert set(np.unique(fit_within(disc.astype(np.uint8) * 7, 100, nearest=True))) == {0, 7}

    for classes in (2, 3):
        def per_pixel(tiles):
            foreground = tiles[..., :1].astype(np.float32) / 255.0
            unused = [np.zeros_like(foreground)] * (classes - 2)
            return np.concatenate([1 - foreground] + unused + [foreground], axis=-1)

        probs = _at_own_size(sliding_window(per_pixel, small, 32, 0.25), image.shape)
        assert probs.shape == (300, 410, classes)
        assert ((probs.argmax(-1) == classes - 1) == disc).mean() > 0.998  # 1 px off: 0.991


def test_a_dataset_too_large_for_ram_is_refused_before_decoding(tmp_path, monkeypatch):
    """Sizes come from the headers, volumes count their slices, and data.max_size shrinks
    them; the error says what to set."""
    from visionsuite.config import load_config
    from visionsuite.core import data
    from visionsuite.tasks.segment import SegmentTask
    from visionsuite.tasks.segment import decode as segment_decode
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.decode import slice_sizes
    from visionsuite.tasks.segment.pairs import Pair
    from test_segment_cli import write_nifti_pair

    root = make_segment_folder(tmp_path / "d", train=2, val=1, size=(400, 300))
    write_nifti_pair(tmp_path, tmp_path, "ct", 0, np.eye(4))  # 3 slices of 40x36
    volume = Pair(tmp_path / "ct.nii.gz", tmp_path / "ct.nii.gz")
    pairs = index_pairs(root).splits["train"] + [volume]
    assert slice_sizes(pairs) == [(300, 400)] * 2 + [(36, 40)] * 3
    assert slice_sizes(pairs, max_size=100) == [(75, 100)] * 2 + [(36, 40)] * 3

    config = load_config("segment", overrides={"data.path": str(root)})
    decoded = []
    monkeypatch.setattr(segment_decode, "decode_pair", lambda *args: decoded.append(args))
    monkeypatch.setattr(data, "available_memory", lambda: 3_000_000)
    with pytest.raises(VisionsuiteError, match=r"3 image slices \(the largest 400x300\) need "
                                               r"about 0.0 GiB of RAM.*set data.max_size"):
        SegmentTask().load_data(config)
    assert not decoded  # refused before the first image was read
    config.data.max_size = 256  # (192x256: a third of the pixels)
    with pytest.raises(VisionsuiteError, match="the val split holds no readable"):
        SegmentTask().load_data(config)  # past the check: decoding (stubbed) found nothing
    assert len(decoded) == 3
    monkeypatch.undo()  # data check decodes one pair at a time, and says what training needs
    monkeypatch.setattr(data, "available_memory", lambda: 3_000_000)
    report = check_segmentation_folders(str(root))
    assert report.usable and "classes: 0 background" in report.text
    assert "RAM to train at the images' own size: about 0.0 GiB (0.0 GiB available); set " \
        "data.max_size" in report.text


def test_metrics_per_class_binary_scores_and_ignored_pixels():
    truth = np.array([[0, 0, 1, 1], [0, 1, 1, IGNORE]], np.uint8)
    foreground = np.array([[0.1, 0.6, 0.9, 0.8], [0.2, 0.4, 0.7, 0.9]], np.float32)
    probs = np.stack([1 - foreground, foreground], -1)
    metrics = segmentation_metrics([probs], [truth], ["background", "foreground"])
    # valid pixels: truth 0 0 1 1 0 1 1 / predicted 0 1 1 1 0 0 1
    assert metrics["pixels"] == 7
    assert metrics["pixel_accuracy"] == pytest.approx(5 / 7)
    assert metrics["per_class"]["foreground"]["dice"] == pytest.approx(2 * 3 / (4 + 4))
    assert metrics["per_class"]["background"]["dice"] == pytest.approx(2 * 2 / (3 + 3))
    assert metrics["sensitivity"] == pytest.approx(3 / 4)
    assert metrics["specificity"] == pytest.approx(2 / 3)
    # AUC: positives 0.9 0.8 0.4 0.7 vs negatives 0.1 0.6 0.2: 11 of 12 pairs ordered.
    assert metrics["roc_auc"] == pytest.approx(11 / 12)


def test_a_threshold_serves_2_class_models_and_is_refused_where_it_would_go_unused():
    from visionsuite.tasks.segment.commands import _foreground_threshold

    assert _foreground_threshold(None, 2) == 0.5 and _foreground_threshold(None, 4) == 0.5
    assert _foreground_threshold(0.3, 2) == 0.3
    with pytest.raises(VisionsuiteError, match="--threshold 0.3: for 2-class models; this one "
                                               "has 4 classes"):
        _foreground_threshold(0.3, 4)
    with pytest.raises(VisionsuiteError, match="must be between 0 and 1"):
        _foreground_threshold(2.0, 2)


def test_each_image_is_scored_and_the_worst_are_shown_first():
    from visionsuite.tasks.segment import TASK

    labels = ["background", "cell", "nucleus"]
    right = np.array([[0, 1], [1, 1]], np.uint8)
    half = np.array([[0, 0], [1, 1]], np.uint8)

    def probabilities(classes):  # one-hot, 3 classes
        return np.eye(3, dtype=np.float32)[classes]

    metrics = segmentation_metrics([probabilities(right), probabilities(half)], [right, right],
                                   labels, names=["a.png", "b.png"])
    first, second = metrics["per_image"]
    assert first == {"image": "a.png", "dice": 1.0, "pixel_accuracy": 1.0,
                     "dice_per_class": {"background": 1.0, "cell": 1.0, "nucleus": None},
                     "hd95": 0.0, "assd": 0.0}
    # b: background 1 true + 2 predicted, 1 right; cell 3 true + 2 predicted, 2 right
    assert second["dice_per_class"] == {"background": pytest.approx(2 / 3),
                                        "cell": pytest.approx(0.8), "nucleus": None}
    assert second["dice"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert second["pixel_accuracy"] == 0.75
    title, rows = TASK.detail_tables(metrics)[-1]
    assert title == "val images by mean Dice (worst first; HD95 and ASSD in pixels):"
    assert [row["image"] for row in rows] == ["b.png", "a.png"]
    tied = segmentation_metrics([probabilities(right)] * 3, [right] * 3, labels,
                                names=["10.mat", "100.mat", "2.mat"])
    assert [row["image"] for row in TASK.detail_tables(tied)[-1][1]] == \
        ["2.mat", "10.mat", "100.mat"]  # ties in the names' order, numbers as numbers
    assert "per_image" not in segmentation_metrics([probabilities(right)], [right], labels)
    assert "per_volume" not in metrics  # 2-D images: no volumes
    # Pooled, a class in neither truth nor prediction has no Dice either, and no part in the mean.
    assert metrics["per_class"]["nucleus"] == {"dice": None, "iou": None, "pixels": 0,
                                               "pixel_fraction": 0.0, "hd95": None,
                                               "assd": None}
    assert metrics["dice"] == pytest.approx(np.mean([metrics["per_class"][name]["dice"]
                                                     for name in ("background", "cell")]))


def test_volumes_are_scored_with_their_slices_pooled_and_averaged_as_cases():
    from visionsuite.tasks.segment import TASK

    labels = ["background", "tumour"]
    hit = np.array([[0, 1], [1, 1]], np.uint8)
    empty = np.zeros((2, 2), np.uint8)
    one_hot = np.eye(2, dtype=np.float32)
    # ct_a: its tumour found on both slices; ct_b: 3 tumour pixels on one slice, 1 predicted
    probs = [one_hot[hit], one_hot[empty], one_hot[hit], one_hot[np.array([[0, 0], [0, 1]])]]
    masks = [hit, empty, hit, hit]
    names = ["ct_a.nii.gz[0]", "ct_a.nii.gz[1]", "ct_b.nii.gz[0]", "ct_b.nii.gz[1]"]
    metrics = segmentation_metrics(probs, masks, labels, names=names)
    first, second = metrics["per_volume"]
    assert (first["volume"], first["slices"], first["dice"]) == ("ct_a.nii.gz", 2, 1.0)
    # ct_b pooled: tumour 6 true, 4 predicted, 4 right: 0.8; background 2 true, 4 predicted
    assert second["dice_per_class"] == {"background": pytest.approx(2 * 2 / 6),
                                        "tumour": pytest.approx(0.8)}
    assert metrics["volumes"] == 2
    assert metrics["volume_dice"] == pytest.approx((1.0 + (2 / 3 + 0.8) / 2) / 2)
    assert metrics["volume_dice_per_class"]["tumour"] == pytest.approx((1.0 + 0.8) / 2)
    assert TASK.headline(metrics)["volume_dice"] == metrics["volume_dice"]
    title, rows = [table for table in TASK.detail_tables(metrics) if "volumes" in table[0]][0]
    assert [row["volume"] for row in rows] == ["ct_b.nii.gz", "ct_a.nii.gz"]
    # KiTS-like: one file name in every case folder; the whole paths tell the volumes apart
    paths = ["case_1/imaging.nii.gz[0]", "case_1/imaging.nii.gz[1]",
             "case_2/imaging.nii.gz[0]", "case_2/imaging.nii.gz[1]"]
    metrics = segmentation_metrics(probs, masks, labels,
                                   names=[Path(path).name for path in paths], paths=paths)
    assert [row["volume"] for row in metrics["per_volume"]] == ["case_1/imaging.nii.gz",
                                                                "case_2/imaging.nii.gz"]
    assert [row["slices"] for row in metrics["per_volume"]] == [2, 2]


def test_surface_distances_are_medpys_hd95_and_assd_and_nsd_in_the_voxel_spacing():
    from visionsuite.tasks.segment.surface import surface, surface_distances

    square = np.zeros((1, 7, 7), bool)
    square[0, 2:5, 2:5] = True
    assert surface(square)[0, 2:5, 2:5].sum() == 8 and not surface(square)[0, 3, 3]  # its outline
    moved = np.roll(square, 1, axis=2)
    # 4 of each outline's 8 pixels are 1 px from the other's, the rest on it: HD95 1, ASSD 1/2;
    # within a tolerance of 0.5 px, half of the surfaces: NSD 1/2
    assert surface_distances(square, moved) == pytest.approx({"hd95": 1.0, "assd": 0.5})
    assert surface_distances(square, moved, tolerance=0.5)["nsd"] == 0.5
    assert surface_distances(square, moved, tolerance=1.0)["nsd"] == 1.0
    assert surface_distances(square, np.zeros_like(square)) is None  # Dice tells that case
    # A volume: the prediction adds a third slice, 3 mm on, over the truth's two
    truth = np.zeros((4, 5, 5), bool)
    truth[:2, 1:4, 1:4] = True
    predicted = np.zeros_like(truth)
    predicted[:3, 1:4, 1:4] = True
    # Every truth voxel is on the surface, 17 on the prediction's (its centre voxel is 0.5 mm
    # in from it); the prediction's 26 surface voxels: 17 on the truth's, 9 of them 3 mm off.
    found = surface_distances(truth, predicted, (3.0, 0.5, 0.5), tolerance=1.0)
    assert found["hd95"] == pytest.approx(3.0)
    assert found["assd"] == pytest.approx((0.5 / 18 + 9 * 3.0 / 26) / 2)
    assert found["nsd"] == pytest.approx(35 / 44)  # all but the 9 voxels 3 mm off
    with pytest.raises(ValueError, match="not positive, square pixels"):
        surface_distances(truth, predicted, (3.0, 0.5, 0.7))


def test_surface_distances_are_per_volume_in_mm_where_spacing_is_known_else_per_image_in_px():
    from visionsuite.tasks.segment import TASK

    labels = ["background", "tumour"]
    one_hot = np.eye(2, dtype=np.float32)
    truth = np.zeros((6, 6), np.uint8)
    truth[1:4, 1:4] = 1
    wide = np.roll(truth, 1, axis=1) | truth  # one column more on the right
    names = ["ct.nii.gz[0]", "ct.nii.gz[1]", "ct.nii.gz[2]"]
    probs, masks = [one_hot[truth], one_hot[wide], one_hot[truth]], [truth, truth, truth]
    spacing = [(2.0, 0.5, 0.5)] * 3
    metrics = segmentation_metrics(probs, masks, labels, names=names, spacing=spacing)
    assert metrics["distance_unit"] == "mm"
    (volume,) = metrics["per_volume"]
    # One volume, its middle slice's outline a column (0.5 mm) too wide
    assert volume["hd95"] == pytest.approx(metrics["hd95"]) and 0 < volume["hd95"] <= 0.5
    assert all("hd95" not in row for row in metrics["per_image"])
    assert TASK.headline(metrics)["hd95_mm"] == metrics["hd95"]
    # Without a spacing for every image: each slice on its own, in pixels
    metrics = segmentation_metrics(probs, masks, labels, names=names,
                                   spacing=[spacing[0], None, spacing[0]])
    assert metrics["distance_unit"] == "px" and "hd95_px" in TASK.headline(metrics)
    assert "nsd" not in metrics and "nsd" not in metrics["per_class"]["tumour"]
    assert [row["hd95"] for row in metrics["per_image"]] == [0.0, 1.0, 0.0]
    assert metrics["per_class"]["tumour"]["hd95"] == pytest.approx(1 / 3)
    title, _ = TASK.detail_tables(metrics)[0]
    assert title == "per class (HD95 and ASSD in pixels):"
    # With a tolerance, the normalised surface Dice: on the slice a column too wide, 3 of the
    # 10 predicted outline pixels (its right edge) and 1 of the truth's 8 are 1 px off
    metrics = segmentation_metrics(probs, masks, labels, names=names, spacing=[None] * 3,
                                   tolerance=0.5)
    assert metrics["per_class"]["tumour"]["nsd"] == pytest.approx((1 + 14 / 18 + 1) / 3)
    nsd = [row["nsd"] for row in metrics["per_image"]]
    assert nsd[0] == nsd[2] == 1.0 and nsd[1] < 1.0
    assert TASK.headline(metrics)["nsd"] == metrics["nsd"]
    title, _ = TASK.detail_tables(metrics)[0]
    assert title == "per class (HD95 and ASSD in pixels; NSD within 0.5 pixels):"
    # Each structure at its own tolerance, as the Decathlon sets one per task: the class at
    # 1 px (every outline pixel within it), the region of that class at 0.5 px as above;
    # background, not named, gets none
    metrics = segmentation_metrics(probs, masks, labels, names=names, spacing=[None] * 3,
                                   regions={"lesion": [1]},
                                   tolerance={"tumour": 1.0, "lesion": 0.5})
    assert metrics["per_class"]["tumour"]["nsd"] == 1.0
    assert metrics["per_class"]["background"]["nsd"] is None and metrics["nsd"] == 1.0
    assert metrics["per_region"]["lesion"]["nsd"] == pytest.approx((1 + 14 / 18 + 1) / 3)
    title, _ = TASK.detail_tables(metrics)[0]
    assert title == "per class (HD95 and ASSD in pixels; NSD within 1 pixels (tumour), " \
                    "0.5 pixels (lesion)):"
    # Ignored pixels (outside a region of interest) belong to no class's surface: the column
    # too many lies outside
    ignored = truth.copy()
    ignored[:, 4:] = IGNORE
    metrics = segmentation_metrics([one_hot[wide]], [ignored], labels)
    assert metrics["per_class"]["tumour"]["hd95"] == 0.0


def test_regions_score_classes_together_as_brats_ranks_whole_tumour_and_core():
    from visionsuite.tasks.segment import TASK, _known_structures, _region_classes

    labels = ["background", "necrosis", "oedema", "enhancing"]
    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 2
    truth[3:5, 3:5] = 3
    predicted = truth.copy()
    predicted[3:5, 3:5] = 1  # the core's class mistaken: its own Dice 0, the tumour's whole
    one_hot = np.eye(4, dtype=np.float32)
    regions = _region_classes({"whole_tumour": ["necrosis", "oedema", "enhancing"],
                               "tumour_core": ["necrosis", "enhancing"]}, labels)
    assert regions == {"whole_tumour": [1, 2, 3], "tumour_core": [1, 3]}
    empty = np.zeros((8, 8), np.uint8)
    metrics = segmentation_metrics([one_hot[predicted], one_hot[empty]], [truth, empty], labels,
                                   names=["a.png", "b.png"], regions=regions)
    whole, core = metrics["per_region"]["whole_tumour"], metrics["per_region"]["tumour_core"]
    assert metrics["per_class"]["enhancing"]["dice"] == 0.0
    assert (whole["dice"], whole["case_dice"], whole["hd95"], whole["pixels"]) == (1.0, 1.0, 0.0,
                                                                                   16)
    assert core["dice"] == 1.0 and core["case_dice"] == 1.0  # b, empty, counts in neither
    assert TASK.headline(metrics)["dice_whole_tumour"] == 1.0
    title, rows = [table for table in TASK.detail_tables(metrics) if "region" in table[0]][0]
    assert [row["region"] for row in rows] == ["whole_tumour", "tumour_core"]
    for regions, error in (({"wt": ["tumour"]}, "data.regions.wt: names no class tumour "
                                                "(the classes: background, necrosis, "),
                           ({"wt": []}, "data.regions.wt: names no classes"),
                           ({"oedema": ["oedema"]}, "data.regions.oedema: is the name of a "
                                                    "class")):
        with pytest.raises(VisionsuiteError, match=re.escape(error)):
            _region_classes(regions, labels)
    # data.surface_tolerance by name: a class or a region, else an error naming them
    regions = {"whole_tumour": [1, 2, 3], "tumour_core": [1, 3]}
    assert _known_structures({"oedema": 1.0, "tumour_core": 2.0}, labels, regions) == {
        "oedema": 1.0, "tumour_core": 2.0}
    with pytest.raises(VisionsuiteError, match=re.escape(
            "data.surface_tolerance.edema: no class or region of that name (the classes and "
            "regions: background, necrosis, oedema, enhancing, whole_tumour, tumour_core)")):
        _known_structures({"edema": 1.0}, labels, regions)


def test_data_check_says_the_voxel_sizes_that_decide_the_distances_unit():
    from collections import Counter

    from visionsuite.tasks.segment.check import _voxels_line

    assert _voxels_line(Counter({None: 5})) == []  # photos: nothing to say
    ct, xray = (2.5, 0.8, 0.8), (0.0, 0.139, 0.139)
    assert _voxels_line(Counter({ct: 3, xray: 1, None: 2})) == [
        "voxel sizes: 0.8 x 0.8 mm, slices 2.5 mm apart (3), 0.139 x 0.139 mm (1); 2 file(s) "
        "give none: HD95 and ASSD in pixels"]
    assert _voxels_line(Counter({(2.5, 0.8, 0.6): 1}))[0].endswith(
        "; pixels not square: HD95 and ASSD in pixels")


def test_a_volumes_spacing_comes_with_its_slices_scaled_as_they_are(tmp_path):
    import nibabel as nib

    from visionsuite.tasks.segment.data import to_split
    from visionsuite.tasks.segment.decode import decode_pairs
    from visionsuite.tasks.segment.pairs import Pair

    labels = np.zeros((40, 36, 3), np.uint8)
    labels[10:20, 10:20] = 1
    affine = np.diag([0.8, 0.6, 2.5, 1.0])
    for name in ("image", "mask"):
        nib.save(nib.Nifti1Image(labels, affine), tmp_path / f"{name}.nii.gz")
    pair = Pair(tmp_path / "image.nii.gz", tmp_path / "mask.nii.gz")
    for max_size, scale in ((None, 1), (20, 2)):  # slices 40 wide, scaled to 20
        decoded, kept, _ = decode_pairs([pair], 1, max_size=max_size)
        split = to_split(decoded, kept, [], class_map({0, 1}, None))
        assert split.spacing == [pytest.approx((2.5, 0.6 * scale, 0.8 * scale))] * 3


def test_loss_ignores_pixels_and_keras_score_matches_numpy():
    import keras

    from visionsuite.tasks.segment.model import keras_parts

    loss_class, score_class = keras_parts()
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, (2, 8, 8)).astype(np.int32)
    logits = rng.normal(size=(2, 8, 8, 3)).astype(np.float32)
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    masked = truth.copy()
    masked[:, :, 4:] = IGNORE
    for terms in (("ce",), ("focal",), ("ce", "dice")):
        loss = loss_class(terms, 3)
        changed = probs.copy()
        changed[:, :, 4:] = probs[:, :, 4:][..., ::-1]  # ignored pixels must not matter
        assert float(loss(masked, probs)) == pytest.approx(float(loss(masked, changed)), rel=1e-5)
        assert float(loss(masked, probs)) > 0
    assert isinstance(loss, keras.losses.Loss)
    # 3 classes count pixel pairs, 5 multiply one-hot matrices: both as numpy counts.
    for classes in (3, 5):
        truth = rng.integers(0, classes, (2, 8, 8)).astype(np.int32)
        truth[:, :, 4:] = IGNORE
        probs = rng.dirichlet(np.ones(classes), (2, 8, 8)).astype(np.float32)
        names = [f"c{index}" for index in range(classes)]
        expected = segmentation_metrics(list(probs), list(truth.astype(np.uint8)), names)
        for name in ("dice", "pixel_accuracy"):
            score = score_class(classes, name)
            score.update_state(truth[:1], probs[:1])
            score.update_state(truth[1:], probs[1:])
            assert float(score.result()) == pytest.approx(expected[name], rel=1e-5)


def test_crops_cover_images_of_different_sizes():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment
    from visionsuite.core.data import TF_ALIGNMENT
    from visionsuite.tasks.segment.data import pad_stack

    images = [np.full((20, 30, 3), 100, np.uint8),
              (np.arange(40 * 12 * 3) % 251).reshape(40, 12, 3).astype(np.uint8)]
    masks = [np.ones((20, 30), np.uint8), np.full((40, 12), 2, np.uint8)]
    stacked, stacked_masks = pad_stack(images, None), pad_stack(masks, IGNORE)
    assert stacked.shape == (2, 40, 30, 3) and stacked_masks[0, 30, 0] == IGNORE
    assert np.array_equal(stacked[1], np.pad(images[1], [(0, 0), (0, 18), (0, 0)], "symmetric"))
    assert stacked.ctypes.data % TF_ALIGNMENT == 0  # shared by training's tensor, not copied
    with pytest.raises(ValueError, match="cannot stack"):
        pad_stack([images[0], images[0][..., :1]], None)
    augment = make_augment(AugmentConfig(rotate=90, zoom=0.2, vflip=0.5), crop_size=16)
    crops, crop_masks = augment(tf.constant(stacked, tf.float32),
                                tf.constant(stacked_masks, tf.int32))
    assert crops.shape == (2, 16, 16, 3) and crop_masks.shape == (2, 16, 16)
    assert set(np.unique(crop_masks[0])) <= {1, IGNORE} and set(np.unique(crop_masks[1])) <= {
        2, IGNORE}


def test_foreground_crops_centre_that_share_of_crops_on_a_labelled_pixel():
    """A 6x6 lesion in a 200x200 image is in about 2% of random 32-px crops; with
    augment.foreground_crops=1 in every crop of an image that has one, and the crop stays
    inside the image even for a lesion at its edge. Images without labels crop at random."""
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    images = np.zeros((4, 200, 200, 1), np.uint8)
    masks = np.zeros((4, 200, 200), np.uint8)
    masks[0, 120:126, 40:46] = 1
    masks[1, 0:6, 194:200] = 2  # in a corner
    masks[2, 50:60, 50:60] = IGNORE  # left out: not a label
    shown = {share: [] for share in (0.0, 1.0)}
    for share in shown:
        augment = make_augment(AugmentConfig(flip=0, rotate=0, translate=0, zoom=0,
                                             brightness=0, contrast=0, foreground_crops=share),
                               crop_size=32)
        for step in range(25):
            crops, crop_masks = augment(tf.constant(images), tf.constant(masks),
                                        seed=tf.constant([step, 7]))
            assert crops.shape == (4, 32, 32, 1)
            shown[share].append([(crop_masks.numpy()[i] == i + 1).any() for i in range(2)])
    assert np.all(shown[1.0])  # every crop holds its image's lesion
    assert np.mean(shown[0.0]) < 0.2


def test_foreground_crops_draw_the_class_first_so_a_small_one_gets_its_share():
    """nnU-Net's rule: an image's labelled classes are equally likely centres, so a 6x6 lesion
    (class 2) far from a 100x100 organ (class 1) is in about half the crops, not in 0.4%
    (its share of the labelled pixels)."""
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    images = np.zeros((8, 200, 200, 1), np.uint8)
    masks = np.zeros((8, 200, 200), np.uint8)
    masks[:, :100, :100] = 1
    masks[:, 180:186, 180:186] = 2
    augment = make_augment(AugmentConfig(flip=0, rotate=0, translate=0, zoom=0, brightness=0,
                                         contrast=0, foreground_crops=1.0), crop_size=32)
    holds = []
    for step in range(10):
        _, crop_masks = augment(tf.constant(images), tf.constant(masks),
                                seed=tf.constant([step, 3]))
        crop_masks = crop_masks.numpy()
        assert all((crop > 0).any() for crop in crop_masks)  # every crop on a label
        holds += [(crop == 2).any() for crop in crop_masks]
    assert 0.35 < np.mean(holds) < 0.65


def test_crops_to_centre_on_labels_are_drawn_from_images_that_hold_labels():
    """nnU-Net's 2-D oversampling: most slices of a scan hold no lesion, so the share of
    crops to be centred on labels is drawn from the slices that hold some; the rest crop each
    image as often as before. End to end through make_dataset: with a share of 1, every crop
    holds the one lesion of the four images."""
    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment
    from visionsuite.core.data import make_dataset
    from visionsuite.tasks.segment.data import labelled_crop_batches

    labelled = np.array([False, True, False, False, True, False])
    epoch = labelled_crop_batches(labelled, repeat=50, share=0.33, batch_size=8, seed=0)
    indices = np.concatenate(list(epoch()))
    assert len(indices) == 6 * 50 // 8 * 8  # the partial batch dropped
    marked = -indices[indices < 0] - 1
    assert set(marked) == {1, 4} and 0.25 < len(marked) / len(indices) < 0.41
    assert [len(batch) for batch in labelled_crop_batches(labelled, 1, 0.5, 8)()] == [6]

    images = np.zeros((4, 200, 200, 1), np.uint8)
    masks = np.zeros((4, 200, 200), np.uint8)
    masks[2, 150:156, 20:26] = 1
    augment = make_augment(AugmentConfig(flip=0, rotate=0, translate=0, zoom=0, brightness=0,
                                         contrast=0, foreground_crops=1.0), crop_size=32)
    batches = labelled_crop_batches(np.array([False, False, True, False]), 3, 1.0, 4)
    dataset = make_dataset(images, masks, 4, training=True, repeat=3, augment_fn=augment,
                           spatial_targets=True, index_batches=batches, labelled_flags=True)
    crops = np.concatenate([batch_masks.numpy() for _, batch_masks in dataset])
    assert crops.shape == (12, 32, 32) and all((crop == 1).any() for crop in crops)


def test_uint8_images_augment_to_the_float32_crops_of_their_float_values():
    """Whole-pixel crops sample the stored uint8 values and cast after (fewer pixels to cast);
    with free rotation they are cast first and interpolated. Both as from float input."""
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    images = np.random.default_rng(0).integers(0, 256, (3, 40, 36, 3)).astype(np.uint8)
    masks = tf.constant(np.arange(3 * 40 * 36).reshape(3, 40, 36) % 3, tf.int32)
    seed = tf.constant([3, 4])
    for rotate in (0, 20):
        augment = make_augment(AugmentConfig(flip=0.5, rotate90=0.5, rotate=rotate,
                                             brightness=0.1, contrast=0.2), crop_size=16)
        from_bytes, byte_masks = augment(tf.constant(images), masks, seed=seed)
        from_floats, float_masks = augment(tf.constant(images, tf.float32), masks, seed=seed)
        assert from_bytes.dtype == tf.float32
        assert np.allclose(from_bytes.numpy(), from_floats.numpy(), atol=1e-4)
        assert np.array_equal(byte_masks.numpy(), float_masks.numpy())
        # Masks as stored (uint8), as make_dataset passes them, crop to the same values.
        stored_masks = augment(tf.constant(images), tf.cast(masks, tf.uint8), seed=seed)[1]
        assert np.array_equal(stored_masks.numpy(), byte_masks.numpy())


def test_training_batches_crop_stored_masks_with_their_images_as_int32():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment
    from visionsuite.core.data import make_dataset

    values = (np.arange(5 * 40 * 36) % 251).astype(np.uint8).reshape(5, 40, 36)
    augment = make_augment(AugmentConfig(flip=0.5, vflip=0.5, rotate=0, rotate90=0.5,
                                         translate=0, zoom=0, brightness=0, contrast=0),
                           crop_size=16)
    dataset = make_dataset(np.repeat(values[..., None], 3, -1), values, 4, training=True,
                           augment_fn=augment, spatial_targets=True, repeat=2)
    for images, masks in dataset:
        assert masks.dtype == tf.int32 and masks.shape == (4, 16, 16)
        assert np.array_equal(images.numpy()[..., 0], masks.numpy())


def test_crops_without_free_rotation_or_zoom_move_pixels_without_interpolating():
    """Flips, quarter turns and crops at whole-pixel offsets: every crop pixel is one image
    pixel, and its mask value comes from that same pixel."""
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    index = np.arange(4 * 40 * 36, dtype=np.float32).reshape(4, 40, 36, 1)
    augment = make_augment(AugmentConfig(flip=0.5, vflip=0.5, rotate=0, rotate90=0.5,
                                         translate=0, zoom=0, brightness=0, contrast=0),
                           crop_size=16)
    crops, masks = augment(tf.constant(index), tf.constant(index[..., 0] % 251, tf.int32))
    crops, masks = crops.numpy()[..., 0], masks.numpy()
    assert np.array_equal(crops, np.round(crops))  # no value between two pixels
    assert np.array_equal(crops % 251, masks)  # image and mask from the same pixel
    for image, crop in zip(index[..., 0], crops):
        assert np.isin(crop, image).all() and len(np.unique(crop)) == 16 * 16
        # Neighbours in the crop are neighbours in the image (a dihedral map, not a shuffle).
        assert set(np.abs(np.diff(crop, axis=1)).ravel()) in ({1.0}, {36.0})


def test_unet_takes_an_encoder_from_the_backbone_zoo():
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    config = load_config("segment", overrides={"data.path": "x"},
                         sets=["model.backbone=resnet18", "model.width=0.125",
                               "data.image_size=64", "model.filters=8"])
    model = TASK.build_model(config, ["a", "b", "c"])
    assert model.output_shape == (None, 64, 64, 3)
    assert any("skip" in layer.name for layer in model.layers)
    config.data.image_size = 48
    with pytest.raises(VisionsuiteError, match="multiple of 32"):
        TASK.build_model(config, ["a", "b"])


def test_mask_offset_benchmark_finds_a_mask_drawn_above_its_line():
    from conftest import load_benchmark

    bench = load_benchmark("mask_offset")
    image = np.full((32, 32, 3), 200, np.uint8)
    image[10:13, 8:24] = 20  # a dark line on rows 10-12
    mask = np.full((32, 32), 1, np.uint8)
    mask[9:12, 8:24] = 0  # traced one row too high
    fit = bench.offset(bench.correlations(image, mask))
    assert fit["best"] == (1, 0) and fit["dy"] == pytest.approx(1.0, abs=0.3)
    probs = np.zeros((4, 3, 1), np.float32)
    probs[1] = 1.0
    assert bench.moved(probs, -0.5, 0)[:, 0, 0].tolist() == [0.5, 0.5, 0.0, 0.0]


def test_a_mask_drawn_on_a_sideways_photos_stored_pixels_is_turned_with_it(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    stored = np.zeros((30, 40), np.uint8)
    stored[4:12, 6:20] = 255  # the lesion, in the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6  # shown turned a quarter clockwise
    for split in ("train", "val"):
        for folder in ("images", "masks"):
            (tmp_path / split / folder).mkdir(parents=True)
        Image.fromarray(np.dstack([stored] * 3)).save(tmp_path / split / "images" / "0.png",
                                                      exif=exif.tobytes())
        Image.fromarray(stored).save(tmp_path / split / "masks" / "0.png")  # no EXIF of its own
    data = TASK.load_data(load_config("segment", overrides={"data.path": str(tmp_path)}))
    image, target = data.val.images[0], data.val.targets[0]
    assert image.shape[:2] == target.shape == (40, 30)
    assert np.array_equal(target, (image[..., 0] > 128).astype(np.uint8))


def test_the_unets_batchnorm_statistics_catch_up_within_a_short_run():
    """After 40 steps, the U-Net in inference mode (moving statistics) labels its training
    batch as in training mode (the batch's own): 0.93 of the pixels alike here with momentum
    0.9, 0.58 with Keras' default 0.99, whose statistics were still mostly the initial ones
    (a 14-image set's val Dice was 0.07 after 3 epochs, with train Dice 0.93)."""
    import keras

    from conftest import compile_quickly
    from visionsuite.config import load_config
    from visionsuite.tasks.segment.model import build_unet

    keras.utils.set_random_seed(0)
    model = build_unet(load_config("segment", sets=["data.image_size=32", "model.levels=2",
                                                    "model.filters=4"]), 2)
    images = np.random.default_rng(0).uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    masks = (images[..., :1] > 128).astype("int32")
    compile_quickly(model, "sparse_categorical_crossentropy")
    model.fit(images, masks, batch_size=8, epochs=40, verbose=0)
    inference = model(images, training=False).numpy().argmax(-1)
    training = model(images, training=True).numpy().argmax(-1)
    assert (inference == training).mean() > 0.85


def test_components_join_within_a_slice_by_8_neighbours_and_across_slices_where_they_overlap():
    from visionsuite.tasks.segment.components import label_components

    plane = np.zeros((1, 5, 5), bool)
    plane[0, 0, 0] = plane[0, 1, 1] = True  # corner to corner: one component
    plane[0, 4, 4] = True
    components = label_components(plane)
    assert components[0, 0, 0] == components[0, 1, 1] != components[0, 4, 4] > 0
    assert len(np.unique(components)) == 3  # 0 outside
    volume = np.zeros((3, 5, 5), bool)
    volume[0, :2, :2] = volume[2, :2, :2] = True  # joined by the middle slice's bar
    volume[1, 1, :] = True
    volume[2, 4, 4] = True  # under nothing in the slice above
    components = label_components(volume)
    assert components[0, 0, 0] == components[1, 1, 4] == components[2, 0, 0]
    assert components[2, 4, 4] not in (0, components[0, 0, 0])


def test_keep_largest_sets_the_structures_other_components_to_class_0():
    from visionsuite.tasks.segment.components import keep_largest

    classes = np.zeros((1, 6, 8), np.uint8)
    classes[0, 1:4, 1:4] = 1  # organ: 9 pixels
    classes[0, 2, 2] = 2  # a lesion inside it
    classes[0, 5, 7] = 1  # a speck of organ far away
    classes[0, 0, 7] = 2  # a speck of lesion, touching no organ
    organ_only = keep_largest(classes, [1])
    assert organ_only[0, 5, 7] == 0 and organ_only[0, 1, 1] == 1 and organ_only[0, 0, 7] == 2
    together = keep_largest(classes, [1, 2])  # organ and lesion as one object
    assert together[0, 5, 7] == 0 and together[0, 0, 7] == 0 and together[0, 2, 2] == 2
    assert keep_largest(np.zeros((1, 3, 3), np.uint8), [1]).sum() == 0


def test_the_largest_component_is_kept_only_for_structures_whose_val_dice_it_raises():
    from visionsuite.tasks.segment.components import choose_largest_components

    truth = np.zeros((1, 12, 12), np.uint8)
    truth[0, 2:6, 2:6] = 1  # one organ
    truth[0, 8:10, 2:4] = truth[0, 8:10, 8:10] = 2  # two small lesions
    predicted = truth.copy()
    predicted[0, 0, 11] = 1  # a false speck of organ
    chosen, trials = choose_largest_components([predicted], [truth], 3)
    # all foreground together would lose a lesion; the organ alone loses its speck
    assert chosen == [[1]]
    assert [(trial["structure"], trial["kept"]) for trial in trials] == [
        ([1, 2], False), ([1], True), ([2], False)]
    assert all(isinstance(trial["kept"], bool) for trial in trials)  # not NumPy's, for JSON
    assert trials[1]["dice_without"] == pytest.approx(32 / 33) and trials[1]["dice_with"] == 1


def test_evaluation_chooses_the_post_processing_on_val_and_applies_a_runs_choice():
    from visionsuite.config import load_config
    from visionsuite.tasks.base import TaskData
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.data import SegmentSplit

    truth = np.zeros((8, 8), np.uint8)
    truth[2:6, 2:6] = 1
    speckled = truth.copy()
    speckled[7, 7] = 1
    labels = ["background", "organ"]
    split = SegmentSplit([np.zeros((8, 8, 3), np.uint8)] * 2, [truth, truth],
                         [Path("a.png"), Path("b.png")], choose_largest_component=True)
    outputs = [np.eye(2, dtype=np.float32)[speckled]] * 2
    metrics = TASK.evaluate(outputs, split, labels)
    assert metrics["keep_largest_component"] == [["organ"]]
    assert metrics["per_class"]["organ"]["dice"] == 1.0  # the speck removed
    assert [row["dice"] for row in metrics["per_image"]] == [1.0, 1.0]
    settings = TASK.inference_settings(metrics, TaskData(labels, split), load_config("segment"))
    assert settings["keep_largest_component"] == [["organ"]]
    title, rows = [table for table in TASK.detail_tables(metrics)
                   if table[0].startswith("post-processing")][0]
    assert rows == [{"structure": "organ", "dice_without": pytest.approx(32 / 33),
                     "dice_with": 1.0, "kept": True}]
    # A trained model's settings decide: evaluate and export apply them, or nothing
    assert TASK.evaluate(outputs, split, labels, settings)["per_class"]["organ"]["dice"] == 1.0
    plain = TASK.evaluate(outputs, split, labels, {})
    assert plain["per_class"]["organ"]["dice"] < 1 and "keep_largest_component" not in plain
    split.choose_largest_component = False  # model.keep_largest_component=false
    assert "keep_largest_component" not in TASK.evaluate(outputs, split, labels)
    with pytest.raises(VisionsuiteError, match="keep_largest_component names tumour, which "
                                               "the model does not have"):
        TASK.evaluate(outputs, split, labels, {"keep_largest_component": [["tumour"]]})


def test_a_volumes_slices_are_post_processed_as_one_case():
    from visionsuite.tasks.segment.components import post_process

    organ = np.zeros((6, 6), np.uint8)
    organ[1:4, 1:4] = 1
    speck = np.zeros((6, 6), np.uint8)
    speck[5, 5] = 1  # alone on its slice: its slice's largest, not the volume's
    paths = ["ct.nii.gz[0]", "ct.nii.gz[1]", "other.png"]
    kept, report = post_process([organ, speck, speck], [organ, organ * 0, speck], paths,
                                ["background", "organ"], [["organ"]])
    assert kept[0].sum() == 9 and kept[1].sum() == 0  # the volume's speck is gone
    assert kept[2].sum() == 1  # a 2-D image is its own case
    assert report == {"keep_largest_component": [["organ"]]}


def _save_organ_image(path: Path, number: int, size, rng) -> tuple[tuple, tuple]:
    """A dim noisy image with a bright organ (24x20) holding a brighter lesion (6x6), both
    moved a little with `number`, saved to `path`; their (left, top, right, bottom) boxes."""
    width, height = size
    x, y = 4 + number, 3 + number % 3
    organ, lesion = (x, y, x + 24, y + 20), (x + 8, y + 6, x + 14, y + 12)
    image = rng.normal(50, 8, (height, width))
    for left, top, right, bottom in (organ, lesion):
        image[top:bottom, left:right] += 80
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path)
    return organ, lesion


def _assert_organ_holds_lesion(mask: np.ndarray) -> None:
    """Image 0's classes: the organ from (4, 3), 24x20, the lesion 6x6 from (12, 9) on top."""
    assert mask[0, 0] == 0 and mask[4, 5] == 1 and mask[10, 13] == 2
    assert (mask == 2).sum() == 36 and (mask > 0).sum() == 24 * 20


def _corners(box) -> list[float]:
    left, top, right, bottom = box
    return [left, top, right, top, right, bottom, left, bottom]


def make_coco_segment_folder(root: Path, size=(40, 30)) -> Path:
    """Roboflow's COCO segmentation export: train/ and valid/, each of images beside its
    _annotations.coco.json, the project as category 0 grouping organ (1) and lesion (2).
    Each image (_save_organ_image): its organ a polygon, its lesion an RLE."""
    import json

    from pycocotools import mask as coco_mask

    width, height = size
    categories = [{"id": 0, "name": "cells", "supercategory": "none"},
                  {"id": 1, "name": "organ", "supercategory": "cells"},
                  {"id": 2, "name": "lesion", "supercategory": "cells"}]
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("valid", 2)):
        (root / split).mkdir(parents=True)
        images, annotations = [], []
        for number in range(count):
            organ, (left, top, right, bottom) = _save_organ_image(
                root / split / f"{number}.jpg", number, size, rng)
            images.append({"id": number, "file_name": f"{number}.jpg", "width": width,
                           "height": height})
            lesion = np.zeros((height, width), np.uint8, order="F")
            lesion[top:bottom, left:right] = 1
            encoded = coco_mask.encode(np.asfortranarray(lesion))
            encoded["counts"] = encoded["counts"].decode()  # as JSON holds it
            annotations += [
                {"id": 2 * number, "image_id": number, "category_id": 1,
                 "segmentation": [_corners(organ)], "iscrowd": 0},
                {"id": 2 * number + 1, "image_id": number, "category_id": 2,
                 "segmentation": encoded, "iscrowd": 1}]
        (root / split / "_annotations.coco.json").write_text(json.dumps(
            {"images": images, "annotations": annotations, "categories": categories}))
    return root


def test_coco_segmentation_exports_pair_each_image_with_its_drawn_classes(tmp_path):
    import json

    from visionsuite.tasks.segment.decode import decode_pairs

    root = make_coco_segment_folder(tmp_path / "coco")
    index = index_pairs(root)
    assert index.class_names == ["background", "organ", "lesion"]  # not the project
    assert index.names_from == "train/_annotations.coco.json"
    assert [len(index.splits[name]) for name in ("train", "val")] == [4, 2]
    _assert_organ_holds_lesion(decode_pairs(index.splits["train"][:1], 1)[0][0].mask)
    spec_path = root / "train" / "_annotations.coco.json"
    spec = json.loads(spec_path.read_text())
    del spec["annotations"][0]["segmentation"]  # a detection export
    spec_path.write_text(json.dumps(spec))
    with pytest.raises(VisionsuiteError, match="annotation 0 has no segmentation .* boxes "
                                               "alone train `visionsuite train detect`"):
        index_pairs(root)
    for number, (change, error) in enumerate((
            (("images", "file_name", "../../outside.jpg"), "path leaves the dataset folder"),
            (("images", "file_name", "gone.jpg"), "its image gone.jpg is not in"),
            (("annotations", "category_id", 7), "annotation 0: category 7 is none of the "
                                                 "file's categories"))):
        root = make_coco_segment_folder(tmp_path / f"broken{number}")
        spec_path = root / "valid" / "_annotations.coco.json"
        spec = json.loads(spec_path.read_text())
        key, field, value = change
        spec[key][0][field] = value
        spec_path.write_text(json.dumps(spec))
        with pytest.raises(VisionsuiteError, match=error):
            index_pairs(root)


def make_yolo_segment_folder(root: Path, size=(40, 30)) -> Path:
    """Roboflow's YOLO segmentation export: data.yaml naming `../train/images` and
    `../valid/images`, a labels/ folder of polygon rows beside each images/ folder; each
    image (_save_organ_image) with its organ (0) and lesion (1) as polygons."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n"
                                    "names: ['organ', 'lesion']\n")
    scale = np.tile(size, 4)  # x, y of 4 corners
    for split, count in (("train", 4), ("valid", 2)):
        for kind in ("images", "labels"):
            (root / split / kind).mkdir(parents=True)
        for number in range(count):
            boxes = _save_organ_image(root / split / "images" / f"{number}.jpg", number, size,
                                      rng)
            rows = [" ".join([str(value)] + [f"{c:.6f}" for c in _corners(box) / scale])
                    for value, box in enumerate(boxes)]
            (root / split / "labels" / f"{number}.txt").write_text("\n".join(rows) + "\n")
    return root


def test_yolo_segmentation_labels_pair_each_image_with_its_drawn_polygons(tmp_path):
    from visionsuite.tasks.segment.decode import decode_pairs

    root = make_yolo_segment_folder(tmp_path / "yolo")
    index = index_pairs(root)
    assert index.class_names == ["background", "organ", "lesion"]
    assert index.names_from == "data.yaml"
    assert [len(index.splits[name]) for name in ("train", "val")] == [4, 2]
    _assert_organ_holds_lesion(decode_pairs(index.splits["train"][:1], 1)[0][0].mask)
    (root / "train" / "labels" / "1.txt").write_text("0 0.5 0.5 0.2 0.2\n")  # a box
    with pytest.raises(VisionsuiteError, match=r"1.txt:1: 5 columns; a segmentation label is "
                                               r"a polygon"):
        index_pairs(root)


def test_yolo_image_lists_in_txt_files_are_read_inside_the_dataset(tmp_path):
    """Ultralytics' other layout: the YAML's train and val name .txt files listing the images,
    './' entries from the YAML's folder, others from the list's own folder."""
    root = make_yolo_segment_folder(tmp_path / "yolo")
    (root / "lists").mkdir()
    (root / "lists" / "train.txt").write_text(
        "".join(f"./train/images/{number}.jpg\n" for number in range(3)))
    (root / "lists" / "val.txt").write_text("../valid/images/0.jpg\n\n../valid/images/1.jpg\n")
    (root / "data.yaml").write_text("train: lists/train.txt\nval: lists/val.txt\n"
                                    "names: ['organ', 'lesion']\n")
    index = index_pairs(root)
    assert [pair.image.name for pair in index.splits["train"]] == ["0.jpg", "1.jpg", "2.jpg"]
    assert [pair.image.parent.parent.name for pair in index.splits["val"]] == ["valid"] * 2
    assert len(index.splits["val"][0].shapes) == 2  # the label files beside them are read
    (root / "lists" / "val.txt").write_text("../../outside.jpg\n")
    with pytest.raises(VisionsuiteError, match="leaves the dataset folder"):
        index_pairs(root)


def test_a_cvat_coco_export_of_polygons_trains_split_by_fraction(tmp_path):
    """CVAT's COCO export: annotations/instances_default.json, its file names relative to
    images/ (detect and segment find COCO files and their images alike: core/coco.py)."""
    from visionsuite.tasks.segment.decode import decode_pairs

    root = make_coco_segment_folder(tmp_path / "coco")
    (root / "train").rename(root / "images")
    (root / "annotations").mkdir()
    (root / "images" / "_annotations.coco.json").rename(
        root / "annotations" / "instances_default.json")
    shutil.rmtree(root / "valid")
    index = index_pairs(root, 0.5)
    assert index.class_names == ["background", "organ", "lesion"]
    assert index.names_from == "annotations/instances_default.json" and index.split_by_fraction
    assert [len(index.splits[name]) for name in ("train", "val")] == [2, 2]
    assert all(pair.image.parent == root / "images" for pair in index.splits["train"])
    _assert_organ_holds_lesion(decode_pairs(index.splits["train"][:1], 1)[0][0].mask)
