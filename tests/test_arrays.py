"""Arrays as images and masks (core/arrays.py): NumPy, HDF5 and MATLAB files, read alone, as
image/mask folders, as files that hold both (Synapse's, Figshare's), and through segment."""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from conftest import snapshot
from test_cli import assert_one_line_error, invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.core.arrays import (case_of, class_of, holds_image, holds_pair, labels_only,
                                     read_array)
from visionsuite.core.images import is_image_file, read_image, read_mask_slices
from visionsuite.core.medical import UnreadableMedical, file_stem, read_slices
from visionsuite.core.splits import Fold
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.channels import image_channels
from visionsuite.tasks.segment.decode import decode_pair
from visionsuite.tasks.segment.index import index_pairs
from visionsuite.tasks.segment.pairs import Pair, named_cases


def square_slice(seed: int, height: int = 40, width: int = 32):
    """A float image in 0..1 and its label (0, and a square of class 1..3), as TransUNet
    stores Synapse's slices."""
    rng = np.random.default_rng(seed)
    label = np.zeros((height, width), np.float32)
    top, left = rng.integers(4, height - 16), rng.integers(4, width - 16)
    label[top:top + 12, left:left + 12] = rng.integers(1, 4)
    image = np.clip(label / 4 + rng.normal(0, 0.05, label.shape), 0, 1).astype(np.float32)
    return image, label


def write_matlab73(path: Path, **arrays) -> None:
    """A MATLAB 7.3 file of a `cjdata` struct, as Figshare's brain tumour set: HDF5 after
    MATLAB's 512-byte header, each array stored column-major (so h5py sees it transposed), a
    string as MATLAB's chars (uint16 codes, its PID '100360')."""
    import h5py

    with h5py.File(path, "w", userblock_size=512) as file:
        group = file.create_group("cjdata")
        for name, values in arrays.items():
            if isinstance(values, str):
                group[name] = np.array([[ord(char) for char in values]], np.uint16).T
                group[name].attrs["MATLAB_class"] = np.bytes_("char")
            else:
                group[name] = np.asarray(values).T
    with open(path, "r+b") as file:
        file.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 "
                   b"2024 HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM")


def make_synapse(root: Path, cases=(5, 6, 7, 9), slices: int = 3) -> Path:
    """TransUNet's Synapse layout: train_npz/case0005_slice000.npz ({image, label}) and
    test_vol_h5/case0001.npy.h5 (volumes of slices along the first axis)."""
    import h5py

    (root / "train_npz").mkdir(parents=True)
    (root / "test_vol_h5").mkdir()
    for case in cases:
        for number in range(slices):
            image, label = square_slice(case * 10 + number)
            np.savez(root / "train_npz" / f"case{case:04d}_slice{number:03d}.npz",
                     image=image, label=label)
    for case in (1, 2):
        pairs = [square_slice(100 + case * 10 + number) for number in range(4)]
        with h5py.File(root / "test_vol_h5" / f"case{case:04d}.npy.h5", "w") as file:
            file["image"] = np.stack([image for image, _ in pairs])
            file["label"] = np.stack([label for _, label in pairs])
    return root


def test_array_shapes_read_as_slices_and_their_values_by_their_type(tmp_path: Path):
    """(H, W) one slice, (S, H, W) slices, (H, W, 3) one colour image; uint8 read as it is,
    floats within 0..1 as 0..1, other values through the file's percentile window."""
    grey = np.arange(40 * 32, dtype=np.uint8).reshape(40, 32)
    np.save(tmp_path / "grey.npy", grey)
    assert np.array_equal(read_image(tmp_path / "grey.npy", channels=1)[..., 0], grey)
    volume = np.linspace(0, 1, 3 * 40 * 32, dtype=np.float32).reshape(3, 40, 32)
    np.save(tmp_path / "volume.npy", volume)
    slices = read_slices(tmp_path / "volume.npy", channels=1)
    assert len(slices) == 3 and slices[0].shape == (40, 32, 1)
    assert slices[-1][-1, -1, 0] == 255 and slices[0][0, 0, 0] == 0
    colour = np.zeros((40, 32, 3), np.uint8)
    colour[..., 0] = 200
    np.save(tmp_path / "colour.npy", colour)
    assert read_image(tmp_path / "colour.npy")[0, 0].tolist() == [200, 0, 0]
    bands = np.random.default_rng(0).random((40, 32, 13), dtype=np.float32) * 3000
    np.save(tmp_path / "sentinel.npy", bands)  # 13 bands: one image of 13 channels
    assert [image.shape for image in read_slices(tmp_path / "sentinel.npy", 13)] == [
        (40, 32, 13)]
    assert image_channels([Pair(tmp_path / "sentinel.npy", tmp_path / "sentinel.npy")]) == 13
    assert image_channels([Pair(tmp_path / "colour.npy", tmp_path / "colour.npy")]) == 3
    assert len(read_slices(tmp_path / "volume.npy", 1)) == 3  # (3, 40, 32): slices
    wide = np.tile(np.arange(32, dtype=np.int16) * 100, (40, 1))  # MRI-like, 0..3100
    np.save(tmp_path / "mri.npy", wide)
    read = read_image(tmp_path / "mri.npy", channels=1)[..., 0]
    assert read[0, 0] == 0 and read[0, -1] == 255  # its own percentile range
    assert np.all(np.diff(read[0].astype(int)) >= 0)


def test_channels_first_read_where_the_shape_or_the_mask_says_so(tmp_path: Path):
    """PyTorch's and MONAI's order: (C, S, H, W) is S slices of C channels; (C, H, W) beside
    a mask of one slice in its file is one image of C channels. Alone, or beside a mask of as
    many slices (ACDC's volumes), (C, H, W) stays C slices, and a separate mask of one slice
    is an error that says how to store it. Before, (C, S, H, W) was no image and the pair's
    (C, H, W) C slices: '1 slice(s) but its image has 3'."""
    rng = np.random.default_rng(0)
    image = rng.random((3, 40, 32)).astype(np.float32)
    label = np.zeros((40, 32), np.uint8)
    np.savez(tmp_path / "pair.npz", image=image, label=label)
    read = read_array(tmp_path / "pair.npz")
    assert read.shape == (1, 40, 32, 3) and np.array_equal(read[0], np.moveaxis(image, 0, -1))
    assert image_channels([Pair(tmp_path / "pair.npz", tmp_path / "pair.npz")]) == 3
    assert read_mask_slices(tmp_path / "pair.npz")[0].shape == (40, 32)
    volume = rng.random((4, 10, 40, 32)).astype(np.float32)
    np.save(tmp_path / "volume.npy", volume)
    read = read_array(tmp_path / "volume.npy")
    assert read.shape == (10, 40, 32, 4) and np.array_equal(read[3, ..., 2], volume[2, 3])
    np.savez(tmp_path / "acdc.npz", image=rng.random((10, 40, 32)), label=np.zeros((10, 40, 32)))
    assert read_array(tmp_path / "acdc.npz").shape == (10, 40, 32)
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    np.save(tmp_path / "images" / "0.npy", image)
    np.save(tmp_path / "masks" / "0.npy", label)
    with pytest.raises(VisionsuiteError, match=r"0.npy: 1 slice\(s\) but its image 0.npy has 3 "
                       r"\(if its first axis holds 3 channels, as PyTorch's \(C, H, W\), store "
                       r"them last, \(H, W, C\), or the mask beside them in one file\)"):
        decode_pair(Pair(tmp_path / "images" / "0.npy", tmp_path / "masks" / "0.npy"), 1, None,
                    False)


def test_matlab_files_read_in_matlabs_orientation(tmp_path: Path):
    """MATLAB 7.3 (HDF5, column-major) and MATLAB 5 (scipy) files: a struct's image and its
    tumour mask, not its 1x1 label, read as MATLAB shows them (not transposed)."""
    import scipy.io

    image, label = square_slice(0, 40, 32)
    mask = (label > 0).astype(np.uint8)
    write_matlab73(tmp_path / "7.mat", image=image * 900, tumorMask=mask, label=[[2.0]],
                   PID=[[49.0]])
    struct = {"image": image * 900, "tumorMask": mask, "label": 2.0}
    scipy.io.savemat(tmp_path / "5.mat", {"cjdata": struct})
    assert (tmp_path / "7.mat").read_bytes()[:10] == b"MATLAB 7.3"  # HDF5 only at byte 512
    for name in ("7.mat", "5.mat"):
        path = tmp_path / name
        assert is_image_file(path) and holds_pair(path)
        assert np.allclose(read_array(path)[0], image * 900, atol=1e-3)
        assert np.array_equal(read_mask_slices(path)[0], mask)
        assert read_image(path).shape == (40, 32, 3)


def make_brats2020(root: Path) -> Path:
    """Kaggle's BraTS 2020 slices: BraTS2020_training_data/content/data/volume_1_slice_0.h5
    ({image: 4 MRI channels, mask: 3 class layers}, volumes 1-3 of 2 slices) beside
    meta_data.csv; the folder of the slices."""
    import h5py

    data = root / "BraTS2020_training_data" / "content" / "data"
    data.mkdir(parents=True)
    layers = np.zeros((40, 32, 3), np.uint8)
    layers[5:30, 5:25, 1], layers[10:15, 10:15, 0] = 1, 1
    for volume in (1, 2, 3):
        for number in range(2):
            with h5py.File(data / f"volume_{volume}_slice_{number}.h5", "w") as file:
                file["image"] = np.full((40, 32, 4), volume, np.float32)
                file["mask"] = layers
    (data / "meta_data.csv").write_text("slice_path,target,volume,slice\n")
    return data


def test_one_hot_masks_read_as_class_indices(tmp_path: Path):
    """The BraTS 2020 .h5 slices: an image of 4 MRI channels and a mask of 3 class layers
    (necrosis, edema, enhancing): class indices 1..3, the smaller layer's where they overlap;
    layers of other values are refused, naming the file."""
    import h5py

    layers = np.zeros((40, 32, 3), np.uint8)
    layers[5:35, 5:30, 1] = 1  # edema, the largest
    layers[10:20, 10:20, 0] = 1  # necrosis inside it
    layers[25:28, 20:23, 2] = 1  # enhancing, inside the edema too
    path = tmp_path / "volume_1_slice_60.h5"
    with h5py.File(path, "w") as file:
        file["image"] = np.random.default_rng(0).random((40, 32, 4), dtype=np.float32)
        file["mask"] = layers
    classes = read_mask_slices(path)[0]
    assert classes[0, 0] == 0 and classes[6, 6] == 2 and classes[15, 15] == 1
    assert classes[26, 21] == 3 and set(np.unique(classes)) == {0, 1, 2, 3}
    assert [image.shape for image in read_slices(path, 4)] == [(40, 32, 4)]
    with h5py.File(tmp_path / "scores.h5", "w") as file:
        file["image"], file["mask"] = np.zeros((40, 32)), layers * 7
    with pytest.raises(UnreadableMedical, match="scores.h5: 3 channels, not class layers"):
        read_mask_slices(tmp_path / "scores.h5")


def test_brats_2020_slices_read_with_their_spreadsheets_beside_them(tmp_path: Path):
    """Kaggle's BraTS 2020 .h5 slices (volume_1_slice_0.h5: 4 MRI channels, 3 class layers)
    beside meta_data.csv: pairs of 4 channels, split a volume at a time. Before, the folder
    was taken for a DICOM series that did not stack."""
    data = make_brats2020(tmp_path)
    index = index_pairs(tmp_path, val_fraction=0.34)
    assert index.root == data and index.odd_files == [data / "meta_data.csv"]
    val = {file_stem(pair.image)[:8] for pair in index.splits["val"]}
    train = {file_stem(pair.image)[:8] for pair in index.splits["train"]}
    assert len(val) == 1 and len(index.splits["val"]) == 2 and not val & train
    assert image_channels(index.splits["train"]) == 4


def test_a_files_array_headers_are_read_once_while_it_is_unchanged(tmp_path: Path,
                                                                   monkeypatch):
    """Indexing, data check and reading each ask a file's shapes (eight times a file before:
    a 2,000-slice BraTS 2020 set's data check took twice as long); a file changed since,
    even to the same size, is read again."""
    import h5py

    from visionsuite.core import arrays

    make_brats2020(tmp_path)
    reads = []
    hdf5_shapes = arrays._hdf5_shapes
    monkeypatch.setattr(arrays, "_hdf5_shapes", lambda path: reads.append(path) or
                        hdf5_shapes(path))
    index = index_pairs(tmp_path, val_fraction=0.34)
    pairs = index.splits["train"] + index.splits["val"]
    for pair in pairs:
        read_array(pair.image), read_array(pair.mask, labels=True)
    assert sorted(reads) == sorted(pair.image for pair in pairs)  # one read of each file
    changed = pairs[0].image
    with h5py.File(changed, "r+") as file:
        file["image"][0, 0, 0] += 1  # same size and shapes: only its time tells
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    read_array(changed)
    assert reads.count(changed) == 2 and len(reads) == len(pairs) + 1


def test_array_files_of_labels_or_ids_are_no_images(tmp_path: Path):
    """Annotation files beside images (Oxford Flowers' imagelabels.mat, a .npy of ids) stay
    other files; a file of pickled objects is refused, not unpickled."""
    import scipy.io

    scipy.io.savemat(tmp_path / "imagelabels.mat", {"labels": np.arange(1, 50)[None]})
    np.save(tmp_path / "ids.npy", np.arange(100))
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}, None], dtype=object))
    (tmp_path / "broken.npz").write_bytes(b"PK\x03\x04 not a zip")
    (tmp_path / "broken.mat").write_bytes(b"MATLAB 5.0 MAT-file, cut short")  # IndexError
    for name in ("imagelabels.mat", "ids.npy", "objects.npy", "broken.npz", "broken.mat"):
        assert not is_image_file(tmp_path / name), name
    with pytest.raises(UnreadableMedical, match="broken.mat: unreadable MATLAB file"):
        read_slices(tmp_path / "broken.mat")
    with pytest.raises(UnreadableMedical, match="objects.npy: unreadable NumPy file"):
        read_slices(tmp_path / "objects.npy")
    import h5py

    (tmp_path / "raw.bin").write_bytes(bytes(64 * 64 * 4))
    with h5py.File(tmp_path / "external.h5", "w") as file:  # its pixels in another file
        outside = [(tmp_path / "raw.bin", 0, 64 * 64 * 4)]
        file.create_dataset("image", (64, 64), "f4", external=outside)
        file["label"] = np.zeros((64, 64), np.uint8)
    assert not holds_pair(tmp_path / "external.h5")
    with pytest.raises(UnreadableMedical, match="external.h5: no array shaped as slices and "
                                                r"named as an image .* \(label\)"):
        read_slices(tmp_path / "external.h5")
    np.savez(tmp_path / "other.npz", weights=np.zeros((64, 64)), bias=np.zeros((64, 64)))
    with pytest.raises(UnreadableMedical, match=r"other.npz: no array shaped as slices and "
                                                r"named as an image .* \(bias, weights\)"):
        read_slices(tmp_path / "other.npz")
    assert not holds_pair(tmp_path / "other.npz") and not holds_image(tmp_path / "other.npz")


def test_synapse_layout_reads_its_split_folders_and_keeps_a_case_on_one_side(tmp_path: Path):
    root = make_synapse(tmp_path / "Synapse")
    index = index_pairs(root)
    assert index.folders == ["train: train_npz/ (each file holds an image and its mask)",
                             "val: test_vol_h5/ (each file holds an image and its mask)"]
    assert len(index.splits["train"]) == 12 and len(index.splits["val"]) == 2
    assert all(pair.image == pair.mask for split in index.splits.values() for pair in split)
    assert file_stem(index.splits["val"][0].image) == "case0001"
    assert len(read_slices(index.splits["val"][0].image)) == 4
    # train_npz alone is split by val_fraction, a case's slices on one side
    alone = index_pairs(root / "train_npz", val_fraction=0.25)
    val_cases = {file_stem(pair.image)[:8] for pair in alone.splits["val"]}
    train_cases = {file_stem(pair.image)[:8] for pair in alone.splits["train"]}
    assert len(val_cases) == 1 and not val_cases & train_cases
    assert len(alone.splits["val"]) == 3
    assert alone.folders[-1] == ("slices named after their case (case0005_slice000.npz): the "
                                 "val split takes whole cases (4 in all)")


def make_figshare(root: Path, count: int = 12, patients: int = 4) -> Path:
    """Figshare's brain tumour MRI: MATLAB 7.3 files 1.mat, ... in two part folders, each a
    cjdata struct of an int16-range image, its tumorMask, its label (the tumour's kind, 1-3)
    and its patient's PID; cvind.mat (cross-validation indices) beside them."""
    import scipy.io

    half = count // 2
    for number in range(1, count + 1):
        folder = root / (f"brainTumorDataPublic_1-{half}" if number <= half else
                         f"brainTumorDataPublic_{half + 1}-{count}")
        folder.mkdir(parents=True, exist_ok=True)
        image, label = square_slice(number)
        write_matlab73(folder / f"{number}.mat", image=image * 900 * (number % 3 + 1),
                       label=[[float(number % 3 + 1)]], tumorMask=(label > 0).astype(np.uint8),
                       PID=f"10036{number % patients}")
    scipy.io.savemat(root / "cvind.mat", {"cvind": np.arange(count)[:, None] % 5 + 1})
    return root


def test_figshare_files_are_split_by_the_patient_they_name(tmp_path: Path):
    """Figshare's brain tumour set: slices of 233 patients in MATLAB files that name their
    patient (cjdata/PID); a patient's slices are kept on one side of the split."""
    root = make_figshare(tmp_path / "figshare")
    assert case_of(root / "brainTumorDataPublic_1-6" / "1.mat") == ("cjdata/PID", "100361")
    index = index_pairs(root, val_fraction=0.25)
    val = {pair.case[1] for pair in index.splits["val"]}
    train = {pair.case[1] for pair in index.splits["train"]}
    assert len(val) == 1 and len(train) == 3 and not val & train
    assert len(index.splits["val"]) == 3
    assert index.folders[-1] == ("cases named in the files (cjdata/PID): the val split takes "
                                 "whole cases (4 in all)")
    assert index.odd_files == [root / "cvind.mat"]


def test_figshare_classes_are_read_from_the_files(tmp_path: Path):
    """classify reads the class each file names (cjdata/label), not the part folders, and
    keeps a patient's slices on one side. Before, the classes were brainTumorDataPublic_1-6
    and brainTumorDataPublic_7-12, split image by image."""
    from visionsuite.tasks.classify import check_image_folders, index_image_folders

    root = make_figshare(tmp_path / "figshare", count=24, patients=6)
    assert class_of(root / "brainTumorDataPublic_1-12" / "1.mat") == ("cjdata/label", "2")
    index = index_image_folders(root, val_fraction=0.34)
    assert index.classes == ["1", "2", "3"] and index.split_by_fraction
    assert index.notes == ["classes named in the files (cjdata/label): 1, 2, 3",
                           "cases named in the files (cjdata/PID): the val split takes whole "
                           "cases (6 in all)"]
    val, train = ({case_of(path)[1] for path, _ in index.splits[split]}
                  for split in ("val", "train"))
    assert len(val) == 2 and len(train) == 4 and not val & train
    assert sum(len(items) for items in index.splits.values()) == 24
    assert all(index.classes[label] == str(int(path.stem) % 3 + 1)
               for items in index.splits.values() for path, label in items)
    assert index.odd_files == [root / "cvind.mat"]
    chosen = index_image_folders(root, val_fraction=0.34, classes=["3", "1"])
    assert chosen.classes == ["3", "1"] and chosen.left_out == ["2"]
    with pytest.raises(VisionsuiteError, match=r"no image of class\(es\) 4 named in data.classes "
                                               r"\(the files' classes, cjdata/label: 1, 2, 3\)"):
        index_image_folders(root, classes=["1", "4"])
    report = check_image_folders(str(root))
    assert report.usable and "classes named in the files (cjdata/label): 1, 2, 3" in report.text
    # a file that names no class: the folders are the classes, as for image files
    np.save(root / "brainTumorDataPublic_1-12" / "unnamed.npy", np.zeros((40, 32)))
    assert index_image_folders(root).classes == ["brainTumorDataPublic_1-12",
                                                 "brainTumorDataPublic_13-24"]
    # in folders of one class each, the folders are the classes, by their names
    by_class = tmp_path / "by_class"
    for path in make_figshare(tmp_path / "sorted", count=24, patients=6).rglob("*.mat"):
        if class_of(path):
            (by_class / class_of(path)[1]).mkdir(parents=True, exist_ok=True)
            path.rename(by_class / class_of(path)[1] / path.name)
    (by_class / "1").rename(by_class / "meningioma")
    assert index_image_folders(by_class).classes == ["2", "3", "meningioma"]


@pytest.mark.slow
def test_figshare_trains_a_classifier_that_reads_its_files(tmp_path: Path):
    """Figshare's files train a classifier with only --data, and `classify` reads one."""
    from conftest import TINY_SETS

    root = make_figshare(tmp_path / "figshare", count=24, patients=6)
    before = snapshot(root)
    sets = [arg for item in TINY_SETS for arg in ("--set", item)]
    result = invoke("train", "classify", "--data", root, "--output", tmp_path / "runs",
                    "--epochs", 2, *sets)
    assert result.exit_code == 0, result.output
    assert snapshot(root) == before
    run = tmp_path / "runs" / "classify" / "exp"
    assert (run / "labels.txt").read_text().split() == ["1", "2", "3"]
    result = invoke("classify", run, root / "brainTumorDataPublic_1-12" / "1.mat", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["predictions"][0]["label"] in ("1", "2", "3")


def make_acdc(root: Path, patients=(1, 2, 3, 4, 5)) -> Path:
    """SSL4MIS' ACDC: volumes data/patient001_frame01.h5 and their slices
    data/slices/patient001_frame01_slice_1.h5, each an image and its label; train.list and
    train_slices.list, val.list and test.list name them."""
    import h5py

    (root / "data" / "slices").mkdir(parents=True)
    for patient in patients:
        case = f"patient{patient:03d}_frame01"
        pairs = [square_slice(patient * 10 + number) for number in range(3)]
        with h5py.File(root / "data" / f"{case}.h5", "w") as file:
            file["image"] = np.stack([image for image, _ in pairs])
            file["label"] = np.stack([label for _, label in pairs]).astype(np.uint8)
        for number, (image, label) in enumerate(pairs, start=1):
            with h5py.File(root / "data" / "slices" / f"{case}_slice_{number}.h5", "w") as file:
                file["image"], file["label"] = image, label.astype(np.uint8)
    (root / "train.list").write_text("patient001_frame01\npatient002_frame01\n"
                                     "patient003_frame01\n")
    (root / "train_slices.list").write_text("".join(
        f"patient00{patient}_frame01_slice_{number}\n" for patient in (1, 2, 3)
        for number in (1, 2, 3)))
    (root / "val.list").write_text("patient004_frame01\n")
    (root / "test.list").write_text("patient005_frame01\n")
    return root


def test_acdc_splits_are_read_from_its_lists(tmp_path: Path):
    """Each split is its list's files (not the volumes and their slices both, mixed)."""
    root = make_acdc(tmp_path / "ACDC")
    index = index_pairs(root)
    assert index.folders == ["train: train.list (3 files)", "val: val.list (1 file)"]
    assert index.odd_files == []  # the lists are read, not ignored
    assert [file_stem(pair.image) for pair in index.splits["train"]] == [
        "patient001_frame01", "patient002_frame01", "patient003_frame01"]
    assert [file_stem(pair.image) for pair in index.splits["val"]] == ["patient004_frame01"]
    test = index_pairs(root, held_out="test")
    assert [file_stem(pair.image) for pair in test.splits["val"]] == ["patient005_frame01"]
    assert test.splits["train"] == [] and test.folders == ["test: test.list (1 file)"]
    (root / "train.list").write_text("patient001_frame01\npatient009_frame01\n")
    index = index_pairs(root)  # train.list names a missing file: train_slices.list is read
    assert index.folders[0] == "train: train_slices.list (9 files)"
    (root / "train_slices.list").write_text("patient009_frame01_slice_1\n")
    with pytest.raises(VisionsuiteError, match=r"train.list: 1 of its 2 names are no file of "
                                               r"the set, or name several \(patient009_frame01\)"):
        index_pairs(root)
    (root / "val.list").unlink()
    (root / "train.list").write_text("patient001_frame01\npatient002_frame01\n"
                                     "patient003_frame01\npatient004_frame01\n")
    index = index_pairs(root)  # no val list: the test list serves, as a test/ folder does
    assert [file_stem(pair.image) for pair in index.splits["val"]] == ["patient005_frame01"]
    (root / "test.list").unlink()
    index = index_pairs(root, val_fraction=0.25)  # no held-out list: split by val_fraction
    assert index.split_by_fraction and len(index.splits["val"]) == 1
    assert len(index.splits["train"]) == 3
    with pytest.raises(VisionsuiteError, match="ACDC: no test list .test.list. beside "
                                               "train.list, train_slices.list"):
        index_pairs(root, held_out="test")


def test_ssl4mis_lists_name_case_folders_or_end_in_txt(tmp_path: Path):
    """SSL4MIS' left atrium set lists case folders, each holding one mri_norm2.h5; its BraTS
    2019 set lists files in train.txt, val.txt and test.txt. Before, the LA set stopped with
    'two files named mri_norm2', and .txt lists were not read (the volumes split at random)."""
    import h5py

    root = tmp_path / "LA"
    cases = [f"{number}RZDK210BSMWAA6467LU" for number in range(6)]
    for case in cases:
        folder = root / "2018LA_Seg_Training Set" / case
        folder.mkdir(parents=True)
        image, label = square_slice(len(case) + int(case[0]))
        with h5py.File(folder / "mri_norm2.h5", "w") as file:
            file["image"], file["label"] = np.stack([image] * 3), np.stack([label] * 3)
    (root / "train.list").write_text("\n".join(cases[:4]) + "\n")
    (root / "test.list").write_text("\n".join(cases[4:]) + "\n")
    index = index_pairs(root)
    assert index.folders == ["train: train.list (4 files)", "val: test.list (2 files)"]
    assert [pair.image.parent.name for pair in index.splits["val"]] == cases[4:]
    (root / "train.list").write_text("mri_norm2\n")  # a name six files share
    with pytest.raises(VisionsuiteError, match=r"train.list: 1 of its 1 names are no file of "
                                               r"the set, or name several \(mri_norm2\)"):
        index_pairs(root)
    brats = make_acdc(tmp_path / "BraTS2019")
    for name in ("train", "val", "test"):
        (brats / f"{name}.list").rename(brats / f"{name}.txt")
    (brats / "train_slices.list").unlink()
    index = index_pairs(brats)
    assert index.folders == ["train: train.txt (3 files)", "val: val.txt (1 file)"]
    assert index.odd_files == []


def make_hovernet_set(root: Path, types: bool) -> Path:
    """CoNSeP's layout (and CPM-17's, Kumar's as HoVer-Net prepared them): Train/ and Test/ of
    Images/*.png and Labels/*.mat (MATLAB 5) holding inst_map, which numbers the nuclei as
    floats, and with `types` type_map, each nucleus' class, and inst_type; Overlay/ beside."""
    import scipy.io
    from PIL import Image

    for split, count in (("Train", 4), ("Test", 2)):
        for folder in ("Images", "Labels", "Overlay"):
            (root / split / folder).mkdir(parents=True)
        for number in range(1, count + 1):
            nuclei, kinds = np.zeros((48, 40)), np.zeros((48, 40), np.int32)
            for nucleus in range(1, 9 + number):  # 9, 10, ... nuclei
                top, left = 2 + (nucleus * 5) % 40, 2 + (nucleus * 11) % 32
                nuclei[top:top + 4, left:left + 4] = nucleus
                kinds[top:top + 4, left:left + 4] = 1 + nucleus % 4
            image = np.where(nuclei[..., None] > 0, 200, 60).astype(np.uint8).repeat(3, -1)
            name = f"{split.lower()}_{number}"
            Image.fromarray(image).save(root / split / "Images" / f"{name}.png")
            Image.fromarray(image).save(root / split / "Overlay" / f"{name}.png")
            arrays = {"inst_map": nuclei}
            if types:
                arrays.update(type_map=kinds, inst_type=np.ones((9 + number, 1)))
            scipy.io.savemat(root / split / "Labels" / f"{name}.mat", arrays)
    return root


def test_hovernet_labels_read_types_or_nuclei(tmp_path: Path):
    """CoNSeP's labels are their type_map (classes), not their inst_map; CPM-17's inst_map
    alone numbers nuclei, read as foreground (data.binary_masks=auto). Before, Labels/ held
    'no masks' (4 files in no image format, e.g. train_1.mat)."""
    from visionsuite.tasks.segment.mask_classes import numbers_objects

    consep = index_pairs(make_hovernet_set(tmp_path / "CoNSeP", types=True))
    assert consep.folders == ["train: Train/ (images: Images/, masks: Labels/)",
                              "val: Test/ (images: Images/, masks: Labels/)"]
    assert labels_only(consep.splits["train"][0].mask) == "type_map"
    assert labels_only(tmp_path / "CoNSeP" / "Train" / "Images" / "train_1.png") is None
    mask = read_mask_slices(consep.splits["train"][0].mask)[0]
    assert set(np.unique(mask)) == {0, 1, 2, 3, 4}
    assert not numbers_objects(consep.splits["train"])
    cpm = index_pairs(make_hovernet_set(tmp_path / "CPM-17", types=False))
    assert numbers_objects(cpm.splits["train"] + cpm.splits["val"])
    assert read_mask_slices(cpm.splits["train"][0].mask, binary=True)[0].max() == 255


def make_lizard(root: Path, info: str = "Filename,Source,Split\n") -> Path:
    """Lizard: Lizard_Images1/ and Lizard_Images2/ of PNGs (consep_1 .. consep_6) beside
    Lizard_Labels/Labels/*.mat of inst_map with each nucleus' `class` and `id`, and
    Lizard_Labels/info.csv (`info`)."""
    import scipy.io
    from PIL import Image

    (root / "Lizard_Labels" / "Labels").mkdir(parents=True)
    (root / "Lizard_Labels" / "info.csv").write_text(info)
    for number in range(1, 7):
        part = root / f"Lizard_Images{1 + (number > 3)}"
        part.mkdir(exist_ok=True)
        nuclei = np.zeros((40, 48), np.int32)
        for nucleus in range(1, 9):
            nuclei[4 * nucleus:4 * nucleus + 3, 5 * nucleus:5 * nucleus + 3] = nucleus + 10
        image = np.where(nuclei[..., None] > 0, 200, 60).astype(np.uint8).repeat(3, -1)
        Image.fromarray(image).save(part / f"consep_{number}.png")
        ids = np.arange(11, 19)[:, None]  # ids other than 1..N: the lookup goes by `id`
        scipy.io.savemat(root / "Lizard_Labels" / "Labels" / f"consep_{number}.mat",
                         {"inst_map": nuclei, "id": ids, "class": 1 + ids % 6,
                          "centroid": np.zeros((8, 2)), "bbox": np.zeros((8, 4))})
    return root


def test_lizard_reads_each_nucleus_class_from_its_labels(tmp_path: Path):
    """Lizard's labels: inst_map with each nucleus' `class` and `id`. Before, Labels/ was
    taken for the one class folder of a folder per class: one foreground class named
    'Labels'."""
    import scipy.io

    root = make_lizard(tmp_path / "Lizard")
    index = index_pairs(root)
    assert index.folders[0] == "pairs: ./ (images: Lizard_Images1/ + Lizard_Images2/, masks: " \
        "Lizard_Labels/Labels/)"
    assert index.class_names is None  # no class folders
    pair = index.splits["train"][0]
    mask = read_mask_slices(pair.mask)[0]
    assert set(np.unique(mask)) == {0, 1, 2, 3, 4, 5, 6}
    assert mask[4, 5] == 1 + 11 % 6 and mask[32, 40] == 1 + 18 % 6
    other = tmp_path / "other.mat"  # a class that is not each nucleus': the inst_map as it is
    scipy.io.savemat(other, {"inst_map": np.arange(12).reshape(3, 4).repeat(8, 0).repeat(8, 1),
                             "class": np.array([[2]])})
    assert set(np.unique(read_mask_slices(other)[0])) == set(range(12))


def test_lizard_is_split_by_its_info_table(tmp_path: Path):
    """info.csv's Split (1, 2, 3) splits Lizard as fold folders split PanNuke: 1 trains, 2
    validates, 3 is the test split; data.folds=3 rotates them. A split column of words
    splits too; an image without a split, or another word, is an error naming the table.
    Before, info.csv was not read: val was a seeded fifth of the images."""
    rows = "".join(f"consep_{number},consep,{(number + 1) // 2}\n" for number in range(1, 7))
    root = make_lizard(tmp_path / "Lizard", "Filename,Source,Split\n" + rows)
    index = index_pairs(root)
    assert index.folders[1] == "split by Lizard_Labels/info.csv's column Split: train: 1; " \
        "val: 2; test: 3"
    stems = {split: sorted(pair.image.stem for pair in pairs)
             for split, pairs in index.splits.items()}
    assert stems == {"train": ["consep_1", "consep_2"], "val": ["consep_3", "consep_4"]}
    test = index_pairs(root, held_out="test")
    assert sorted(pair.image.stem for pair in test.splits["val"]) == ["consep_5", "consep_6"]
    assert sorted(pair.image.stem for pair in index_pairs(root, 1.0, held_out="test").splits[
        "val"]) == ["consep_5", "consep_6"]  # data check --split test
    rotated = index_pairs(root, Fold(0, 3))
    assert sorted(pair.image.stem for pair in rotated.splits["val"]) == ["consep_1", "consep_2"]
    assert rotated.split_by_fraction and rotated.folds_by == "info.csv's column Split"
    words = tmp_path / "words"
    make_lizard(words, "name,split\n" + "".join(
        f"consep_{number},{'train' if number < 5 else 'test'}\n" for number in range(1, 7)))
    assert sorted(pair.image.stem for pair in index_pairs(words, held_out="test").splits[
        "val"]) == ["consep_5", "consep_6"]
    with pytest.raises(VisionsuiteError, match="no row's split is val"):
        index_pairs(words)
    table = words / "Lizard_Labels" / "info.csv"
    table.write_text("name,split\nconsep_1,train\nconsep_2,holdout\n")
    with pytest.raises(VisionsuiteError, match="info.csv: its column split gives no split for "
                                               "4 image"):
        index_pairs(words)
    table.write_text("name,split\n" + "".join(
        f"consep_{number},holdout\n" for number in range(1, 7)))
    with pytest.raises(VisionsuiteError, match="info.csv: column split holds 'holdout'"):
        index_pairs(words)


def test_slices_are_cases_only_where_every_name_says_so():
    named = [Pair(Path(f"d/patient{p:03d}_frame01_slice_{s}.h5"), Path("m")) for p in (1, 2)
             for s in (1, 2)]
    cases, how = named_cases(named)
    assert sorted(case for _, case in cases) == ["patient001_frame01", "patient002_frame01"]
    assert how == "slices named after their case (patient001_frame01_slice_1.h5)"
    assert named_cases(named + [Pair(Path("d/other.h5"), Path("m"))]) is None
    assert named_cases(named[:2]) is None  # one case: nothing to keep apart


def test_image_and_mask_folders_of_npy_files_pair_by_stem(tmp_path: Path):
    for folder in ("images", "masks"):
        (tmp_path / folder).mkdir()
    for number in range(4):
        image, label = square_slice(number)
        np.save(tmp_path / "images" / f"{number}.npy", (image * 4095).astype(np.uint16))
        np.save(tmp_path / "masks" / f"{number}.npy", label.astype(np.uint8))
    index = index_pairs(tmp_path, val_fraction=0.25)
    pairs = index.splits["train"] + index.splits["val"]
    assert sorted(file_stem(pair.mask) for pair in pairs) == ["0", "1", "2", "3"]
    assert all(file_stem(pair.image) == file_stem(pair.mask) for pair in pairs)


@pytest.mark.slow
def test_synapse_trains_evaluates_and_segments_to_arrays(tmp_path: Path):
    """The layout trains with only --data; `segment` writes each array input's mask as a
    .npy of its slices' shape, and its probabilities likewise (a DICOM SEG of none)."""
    root = make_synapse(tmp_path / "Synapse")
    before = snapshot(root)
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    assert snapshot(root) == before
    run = tmp_path / "runs" / "segment" / "exp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert 0 <= metrics["dice"] <= 1 and metrics["per_class"]["class_3"]["dice"] is not None
    result = invoke("evaluate", run, "--data", root)
    assert result.exit_code == 0, result.output
    out = tmp_path / "masks"
    volume = root / "test_vol_h5" / "case0001.npy.h5"
    one = root / "train_npz" / "case0005_slice000.npz"
    labels = tmp_path / "labels.npz"  # as HoVer-Net's Labels/*.mat beside their images
    np.savez(labels, inst_map=np.zeros((40, 32)), type_map=np.zeros((40, 32), np.int32))
    result = invoke("segment", run, volume, one, labels, "--output", out, "--probabilities",
                    "--json", "--dicom-seg")
    assert result.exit_code == 0, result.output
    assert f"{volume}: not DICOM; no DICOM SEG" in result.stderr
    assert f"{labels}: an array file of labels alone (type_map), not an image; left out" \
        in result.stderr
    written = {Path(item["image"]).name: item for item in json.loads(result.stdout)}
    stack = np.load(written[volume.name]["mask"])
    assert stack.shape == (4, 40, 32) and stack.dtype == np.uint8 and stack.max() <= 3
    assert np.load(written[one.name]["mask"]).shape == (40, 32)
    result = invoke("segment", run, one.parent, "--output", tmp_path / "whole", "--json")
    assert result.exit_code == 0, result.output  # files of an image and its mask are images
    assert len(json.loads(result.stdout)) == len(list(one.parent.iterdir()))
    probability = np.load(written[volume.name]["probabilities"]["class_1"])
    assert probability.shape == (4, 40, 32) and probability.dtype == np.float32


@pytest.mark.slow
def test_arrays_of_channels_train_and_segment(tmp_path: Path):
    """A model of the BraTS 2020 slices' 4 MRI channels segments such .h5 files, and names
    an array of other channels with its count. Before, `segment` took every array input for
    one channel: '...h5: one channel, but the model takes 4 channels'."""
    data = make_brats2020(tmp_path)
    result = invoke("train", "segment", "--data", tmp_path, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    slice_file = data / "volume_1_slice_0.h5"
    result = invoke("segment", run, slice_file, "--output", tmp_path / "masks", "--json")
    assert result.exit_code == 0, result.output
    mask = np.load(json.loads(result.stdout)[0]["mask"])
    assert mask.shape == (40, 32) and mask.max() <= 3
    np.save(tmp_path / "rgb.npy", np.zeros((40, 32, 3), np.uint8))
    result = invoke("segment", run, tmp_path / "rgb.npy", "--output", tmp_path / "other")
    assert_one_line_error(result, "rgb.npy: 3 channels, but the model takes 4 channels")
