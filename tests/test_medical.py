"""DICOM and NIfTI reading, windowing and label volumes, on the sample files that ship with
pydicom and nibabel (installed with visionsuite, so these never skip)."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from nibabel.testing import data_path as NIBABEL_DATA
from pydicom.data import get_testdata_file

from visionsuite.core.images import UnreadableImage, read_image
from visionsuite.core.medical import (DicomSeries, describe, file_stem, labels_to_volume,
                                      read_label_slices, read_slices, series_labels_to_nifti,
                                      stack_dicom_series, voxel_spacing, voxel_volume_mm3)
from visionsuite.errors import VisionsuiteError


def dicom_sample(name: str) -> Path:
    path = get_testdata_file(name, download=False)  # never download: tests run offline
    assert path, f"{name} is missing from pydicom's bundled test files"
    return Path(path)


def nifti_sample(name: str) -> Path:
    return Path(NIBABEL_DATA) / name


def window_by_hand(values: np.ndarray, center: float, width: float) -> np.ndarray:
    low = center - width / 2
    return np.clip(np.round((values - low) * 255 / width), 0, 255).astype(np.uint8)


def test_ct_is_windowed_in_hounsfield_units_with_the_window_given():
    path = dicom_sample("CT_small.dcm")
    dataset = pydicom.dcmread(path)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    (image,) = read_slices(path, channels=3, window=[40, 400])
    assert image.shape == (128, 128, 3) and image.dtype == np.uint8
    assert np.array_equal(image[..., 0], window_by_hand(hounsfield, 40, 400))
    assert np.array_equal(image[..., 0], image[..., 2])
    # CT_small.dcm has no window of its own: the percentile range spreads it over 0..255.
    (own,) = read_slices(path, channels=1)
    assert own.shape == (128, 128, 1) and own.min() == 0 and own.max() == 255


def test_the_dicom_files_own_window_is_the_default():
    path = dicom_sample("MR_small.dcm")
    dataset = pydicom.dcmread(path)
    assert (float(dataset.WindowCenter), float(dataset.WindowWidth)) == (600, 1600)
    (image,) = read_slices(path, channels=1)
    assert np.array_equal(image[..., 0], window_by_hand(dataset.pixel_array.astype(float), 600,
                                                        1600))
    assert describe(path) == "DICOM MR MONOCHROME2"
    # A single slice reads as any image, resized like one.
    assert read_image(path, size=32).shape == (32, 32, 3)


def test_multiframe_colour_dicom_gives_one_rgb_image_per_frame():
    frames = read_slices(dicom_sample("SC_rgb_rle_2frame.dcm"), channels=3)
    assert len(frames) == 2 and frames[0].shape[-1] == 3 and frames[0].dtype == np.uint8
    assert (frames[0][..., 0] != frames[0][..., 1]).any()  # colour, not grey
    with pytest.raises(UnreadableImage, match="2 slices"):
        read_image(dicom_sample("SC_rgb_rle_2frame.dcm"))


def test_bad_dicom_files_are_one_line_errors_naming_the_file(tmp_path):
    truncated = dicom_sample("MR_truncated.dcm")
    with pytest.raises(UnreadableImage, match="MR_truncated.dcm"):
        read_slices(truncated)
    fake = tmp_path / "notes.dcm"
    fake.write_text("not a dicom file")
    error = pytest.raises(UnreadableImage, read_slices, fake).value
    assert str(error).startswith(str(fake)) and "\n" not in str(error)
    with pytest.raises(VisionsuiteError, match="center, width"):
        read_slices(dicom_sample("CT_small.dcm"), window=[40, 0])


def test_compressed_dicom_as_pacs_export_it_decodes_to_the_same_pixels():
    # JPEG Lossless (Process 14) and JPEG-LS, which GDCM decodes: the pixels of their
    # uncompressed (or RLE) twins
    for compressed, plain in (("SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle.dcm"),
                              ("MR_small_jpeg_ls_lossless.dcm", "MR_small.dcm")):
        found, expected = read_slices(dicom_sample(compressed)), read_slices(dicom_sample(plain))
        assert len(found) == 1 and np.array_equal(found[0], expected[0]), compressed
    import importlib.util

    if importlib.util.find_spec("libjpeg") is None:  # no GPL decoder installed: advice
        error = pytest.raises(UnreadableImage, read_slices, dicom_sample("JPGExtended.dcm"))
        assert "JPGExtended.dcm: cannot decode its pixel data (JPEG Extended" in str(error.value)
        assert "12-bit" in str(error.value) and "pip install pylibjpeg" in str(error.value)


def test_nifti_volume_reads_as_upright_slices_along_the_third_axis():
    path = nifti_sample("anatomical.nii")
    volume = np.asarray(nib.load(path).dataobj, np.float32)  # (33, 41, 25)
    slices = read_slices(path, channels=1, window=[500, 1000])
    assert len(slices) == 25 and slices[0].shape == (41, 33, 1)
    assert np.array_equal(slices[7][..., 0], window_by_hand(np.flipud(volume[:, :, 7].T), 500,
                                                            1000))
    assert file_stem(Path("scan.nii.gz")) == "scan" and file_stem(Path("scan.dcm")) == "scan"
    assert voxel_volume_mm3(path) == pytest.approx(8.0)  # 2 x 2 x 2 mm voxels


def test_4d_nifti_reads_as_slices_of_one_channel_per_volume_each_windowed_on_its_own(
        tmp_path):
    """The Decathlon's multi-modal MRI: FLAIR, T1, ... along the fourth axis, each windowed
    from its own percentiles (their intensities share no scale)."""
    sample = nib.load(nifti_sample("example4d.nii.gz"))  # (128, 96, 24, 2)
    volume = np.asarray(sample.dataobj, np.float32)
    volume[..., 1] = volume[..., 1] * 10 + 500  # the second modality on another scale
    path = tmp_path / "case.nii.gz"
    nib.save(nib.Nifti1Image(volume, sample.affine), path)
    slices = read_slices(path, channels=2)
    assert len(slices) == 24 and slices[0].shape == (96, 128, 2)
    for channel in range(2):
        low, high = np.percentile(volume[..., channel], (0.5, 99.5))
        expected = window_by_hand(np.flipud(volume[:, :, 5, channel].T), (low + high) / 2,
                                  high - low)
        assert np.abs(slices[5][..., channel].astype(int) - expected).max() <= 1
    with pytest.raises(UnreadableImage, match="2 channels .*but the model takes 3"):
        read_slices(path, channels=3)
    with pytest.raises(UnreadableImage, match="2 volumes .*expected one channel"):
        read_label_slices(path)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 2, 2, 2), np.float32), np.eye(4)),
             tmp_path / "five.nii.gz")
    with pytest.raises(UnreadableImage, match="a 5-D volume"):
        read_slices(tmp_path / "five.nii.gz")


def test_a_4d_nifti_with_its_own_window_reads_every_channel_through_it(tmp_path):
    """cal_min/cal_max (the file's own window) and data.window are one window for every
    channel, as data check says: it no longer says each is windowed on its own."""
    from visionsuite.core.medical import file_channels_windowed_apart
    from visionsuite.tasks.segment.check import _windowed_per_channel
    from visionsuite.tasks.segment.pairs import Pair

    volume = np.random.default_rng(0).uniform(0, 1000, (16, 12, 2, 2)).astype(np.float32)
    apart, shared = tmp_path / "apart.nii.gz", tmp_path / "shared.nii.gz"
    nib.save(nib.Nifti1Image(volume, np.eye(4)), apart)
    image = nib.Nifti1Image(volume, np.eye(4))
    image.header["cal_min"], image.header["cal_max"] = 0, 2000
    nib.save(image, shared)
    assert file_channels_windowed_apart(apart)
    assert not file_channels_windowed_apart(shared)
    assert not file_channels_windowed_apart(apart, [500, 1000])
    expected = window_by_hand(np.flipud(np.swapaxes(volume[:, :, 1], 0, 1)), 1000, 2000)
    assert np.abs(read_slices(shared, 2)[1].astype(int) - expected).max() <= 1
    assert _windowed_per_channel([Pair(apart, apart)])
    assert not _windowed_per_channel([Pair(shared, apart)])


def test_label_volume_keeps_the_inputs_geometry_and_reads_back_the_same(tmp_path):
    reference = nifti_sample("anatomical.nii")
    slices = read_slices(reference, channels=1)
    labels = [(image[..., 0] > 128).astype(np.uint8) for image in slices]
    written = labels_to_volume(labels, reference, tmp_path / "out" / "anatomical.nii.gz", 2)
    image, source = nib.load(written), nib.load(reference)
    assert image.shape == source.shape
    assert np.allclose(image.affine, source.affine)
    assert image.get_data_dtype() == np.uint8
    assert nib.aff2axcodes(image.affine) == ("L", "A", "S")
    back = read_label_slices(written)
    assert all(np.array_equal(a, b) for a, b in zip(back, labels))
    assert not list((tmp_path / "out").glob(".*"))  # no temporary file left behind


def test_label_files_must_hold_whole_numbers(tmp_path):
    path = tmp_path / "soft.nii.gz"
    nib.save(nib.Nifti1Image(np.full((4, 4, 2), 0.5, np.float32), np.eye(4)), path)
    with pytest.raises(UnreadableImage, match="whole numbers"):
        read_label_slices(path)
    cells = np.zeros((4, 4, 2), np.int16)
    cells[1, 1, 0], cells[2, 3, 1] = 1, 1200  # an instance label volume: cells numbered
    nib.save(nib.Nifti1Image(cells, np.eye(4)), tmp_path / "cells.nii.gz")
    with pytest.raises(UnreadableImage, match="set data.binary_masks=true"):
        read_label_slices(tmp_path / "cells.nii.gz")
    binary = read_label_slices(tmp_path / "cells.nii.gz", binary=True)
    assert [int((s == 255).sum()) for s in binary] == [1, 1] and binary[0].max() == 255


def test_a_dicom_series_without_extensions_is_found_by_its_marker(tmp_path):
    from visionsuite.core.images import collect_images

    sample = dicom_sample("CT_small.dcm")
    for name in ("IM0001", "slice.IMA"):
        (tmp_path / name).write_bytes(sample.read_bytes())
    (tmp_path / "DICOMDIR.txt").write_text("x" * 200)  # no "DICM" at byte 128: not an image
    found = collect_images([str(tmp_path)])
    assert [path.name for path in found] == ["IM0001", "slice.IMA"]
    assert describe(found[0]) == describe(sample)
    assert np.array_equal(read_image(found[1]), read_image(sample))


def test_slices_named_by_number_pair_with_their_masks_by_whole_name(tmp_path):
    from PIL import Image

    from visionsuite.tasks.segment.index import index_pairs

    sample = dicom_sample("CT_small.dcm").read_bytes()
    for split in ("train", "val"):
        (tmp_path / split / "images").mkdir(parents=True)
        (tmp_path / split / "masks").mkdir()
        for number in (320, 321):  # UID-style names: the last "suffix" is the slice number
            (tmp_path / split / "images" / f"1.2.840.{number}").write_bytes(sample)
            Image.new("L", (128, 128)).save(tmp_path / split / "masks" / f"1.2.840.{number}.png")
    assert file_stem(Path("1.2.840.320")) == "1.2.840.320"
    pairs = index_pairs(tmp_path).splits["train"]
    assert [(p.image.name, p.mask.name) for p in pairs] == [
        ("1.2.840.320", "1.2.840.320.png"), ("1.2.840.321", "1.2.840.321.png")]


def test_slice_sizes_come_from_the_header_for_detection_boxes():
    from visionsuite.core.images import inspect_image, stored_geometry

    ct = dicom_sample("CT_small.dcm")
    assert inspect_image(ct, decode=False)[0] == inspect_image(ct)[0] == (128, 128)
    assert stored_geometry(ct) == stored_geometry(ct, decode=True) == ((128, 128), 1)
    volume = nifti_sample("anatomical.nii")  # slices of (41, 33): 33 wide, 41 high
    assert inspect_image(volume, decode=False)[0] == inspect_image(volume)[0] == (33, 41)


def _save_volume(path: Path, values: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(values, np.eye(4)), path)


def _hippocampus_case(root: Path, stem: str, image_stems: tuple[str, ...]) -> None:
    """A 24x20x3 volume with two labelled halves of a block (values 1 and 2)."""
    label = np.zeros((24, 20, 3), np.uint8)
    label[6:18, 5:15] = 1
    label[12:18, 5:15] = 2
    for image_stem in image_stems:
        _save_volume(root / "imagesTr" / f"{image_stem}.nii.gz", (label * 50.0).astype(np.float32))
    _save_volume(root / "labelsTr" / f"{stem}.nii.gz", label)


def test_a_decathlon_set_reads_as_it_comes_with_its_class_names(tmp_path):
    """The Medical Segmentation Decathlon's layout: imagesTr/, labelsTr/, imagesTs/ (no
    labels) and dataset.json naming the classes; the val split takes whole volumes."""
    import json

    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "Task04_Hippocampus"
    for number in range(1, 6):
        _hippocampus_case(root, f"hippocampus_{number:03d}", (f"hippocampus_{number:03d}",))
    _save_volume(root / "imagesTs" / "hippocampus_300.nii.gz", np.zeros((24, 20, 3), np.float32))
    (root / "dataset.json").write_text(json.dumps(
        {"name": "Hippocampus", "labels": {"0": "background", "1": "Anterior", "2": "Posterior"}}))
    index = index_pairs(root, 0.2)
    assert index.class_names == ["background", "Anterior", "Posterior"]
    assert [len(index.splits[name]) for name in ("train", "val")] == [4, 1]  # volumes
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  pairs: ./ (images: imagesTr/, masks: labelsTr/)" in report.text.splitlines()
    assert "classes (named in dataset.json): 0 background" in report.text
    data = TASK.load_data(load_config("segment", overrides={"data.path": str(root)}))
    assert data.labels == ["background", "Anterior", "Posterior"] and len(data.val) == 3
    # Read as binary, the classes are background and foreground (not 255 left out as ignore).
    binary = TASK.load_data(load_config("segment", overrides={"data.path": str(root)},
                                        sets=["data.binary_masks=true"]))
    assert binary.labels == ["background", "foreground"]
    assert set(np.unique(np.concatenate([m.ravel() for m in binary.val.targets]))) == {0, 1}
    # nnU-Net's dataset.json maps names to values.
    (root / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "left": 1,
                                                              "right": 2}}))
    assert index_pairs(root, 0.2).class_names == ["background", "left", "right"]
    (root / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "both"}}))
    report = check_segmentation_folders(str(root))
    assert not report.usable and report.problem.endswith(
        "mask values [2] are outside the 2 classes (background, both)")
    (root / "dataset.json").write_text("{not json")
    with pytest.raises(VisionsuiteError, match="dataset.json: not readable as JSON"):
        index_pairs(root, 0.2)


def test_nnunet_cases_pair_all_their_channel_files_with_their_label(tmp_path):
    """nnU-Net's raw layout: imagesTr/case_0000.nii.gz and case_0001.nii.gz (a channel each,
    named in dataset.json) beside labelsTr/case.nii.gz; a case short of a channel is an error
    naming it."""
    import json

    from visionsuite.tasks.segment.channels import image_channels
    from visionsuite.tasks.segment.check import check_segmentation_folders
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "Dataset005_Prostate"
    for number in range(1, 4):
        case = f"case_{number:03d}"
        _hippocampus_case(root, case, (f"{case}_0000", f"{case}_0001"))
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "T2", "1": "ADC"},
                                                   "labels": {"background": 0, "a": 1, "b": 2}}))
    index = index_pairs(root, 0.2)
    pairs = [pair for split in index.splits.values() for pair in split]
    assert sorted((p.image.name, p.mask.name) for p in pairs) == [
        (f"case_{n:03d}_0000.nii.gz", f"case_{n:03d}.nii.gz") for n in range(1, 4)]
    assert all([path.name for path in p.channels] == [p.image.name.replace("_0000", "_0001")]
               for p in pairs)
    assert image_channels(pairs) == 2 and index.channel_names == ["T2", "ADC"]
    report = check_segmentation_folders(str(root))
    assert report.usable, report.problem
    assert "  images of 2 channels, each windowed on its own: T2, ADC" in report.text.splitlines()
    (root / "imagesTr" / "case_002_0001.nii.gz").unlink()
    with pytest.raises(VisionsuiteError, match="imagesTr: case case_002 has the channel files "
                       "_0000, where every case needs _0000 to _0001"):
        index_pairs(root, 0.2)


def test_images_of_different_channel_counts_are_an_error_naming_them(tmp_path):
    from visionsuite.tasks.segment.channels import image_channels
    from visionsuite.tasks.segment.pairs import Pair

    three_d, four_d = tmp_path / "a.nii.gz", tmp_path / "b.nii.gz"
    _save_volume(three_d, np.zeros((8, 8, 2), np.float32))
    _save_volume(four_d, np.zeros((8, 8, 2, 4), np.float32))
    assert image_channels([Pair(three_d, three_d)]) is None  # grey: data.channels decides
    assert image_channels([Pair(four_d, three_d)]) == 4
    with pytest.raises(VisionsuiteError, match=r"b.nii.gz: 4 channels, but .*a.nii.gz has 1"):
        image_channels([Pair(three_d, three_d), Pair(four_d, three_d)])


# pydicom's DICOMDIR samples: real scanner series cut down to 16x16 pixels.
SERIES_SAMPLES = dicom_sample("CT_small.dcm").parent / "dicomdirtests"


def _copy_shuffled(folder: Path, target: Path) -> list[Path]:
    """The files of a sample series under names that sort against their slice order."""
    target.mkdir(parents=True)
    copies = []
    for index, source in enumerate(sorted(folder.iterdir(), reverse=True)):
        copies.append(target / f"IM{(index * 7) % 10:04d}")
        copies[-1].write_bytes(source.read_bytes())
    return sorted(copies)


def _patient_ras(dataset, column: float, row: float) -> np.ndarray:
    """DICOM PS3.3 C.7.6.2.1.1: where pixel (row, column) of a slice lies, LPS+ made RAS+."""
    position = np.array(dataset.ImagePositionPatient, float)
    cosines = np.array(dataset.ImageOrientationPatient, float)
    row_spacing, column_spacing = (float(v) for v in dataset.PixelSpacing)
    lps = position + column * column_spacing * cosines[:3] + row * row_spacing * cosines[3:]
    return lps * [-1, -1, 1]


def test_a_dicom_series_stacks_in_slice_order_into_its_patient_geometry(tmp_path):
    files = _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT5N", tmp_path / "chest")
    lone = tmp_path / "lone.png"
    lone.write_bytes(b"not read")
    items, notes = stack_dicom_series([lone, *files])
    assert notes == [] and items[0] == lone
    (series,) = items[1:]
    assert isinstance(series, DicomSeries) and series.name == "chest" and not series.sheared
    datasets = [pydicom.dcmread(path) for path in series.paths]
    heights = [float(d.ImagePositionPatient[2]) for d in datasets]
    assert sorted(series.paths) == files and heights == sorted(heights)  # along the normal
    rows = datasets[0].Rows
    for k, dataset in enumerate(datasets):  # voxel (column, row from the bottom, slice)
        for column, row in ((0, 0), (15, 0), (3, 11), (15, 15)):
            voxel = [column, rows - 1 - row, k, 1]
            assert np.allclose((series.affine @ voxel)[:3], _patient_ras(dataset, column, row),
                               atol=1e-3)
    assert series.voxel_mm3 == pytest.approx(0.488281 ** 2 * 2.5, rel=1e-5)
    # (between slices, rows, columns), as surface distances are measured
    assert voxel_spacing(tmp_path / "chest") == pytest.approx((2.5, 0.488281, 0.488281),
                                                              rel=1e-5)


def test_voxel_spacing_of_single_files_is_what_their_headers_say(tmp_path):
    path = tmp_path / "scan.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 3, 2), np.int16), np.diag([0.8, 0.7, 2.5, 1])), path)
    assert voxel_spacing(path) == pytest.approx((2.5, 0.7, 0.8))  # rows run along y
    assert voxel_spacing(dicom_sample("CT_small.dcm")) == pytest.approx((0, 0.661468, 0.661468))
    # frames without a distance between them, and formats that keep none, have no spacing
    assert voxel_spacing(dicom_sample("SC_rgb_rle_2frame.dcm")) is None
    png = tmp_path / "slide.png"
    png.write_bytes(b"not read")
    assert voxel_spacing(png) is None


def test_series_labels_overlay_their_slices_and_read_back_upright(tmp_path):
    files = _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT5N", tmp_path / "chest")
    ((series,), _) = stack_dicom_series(files)
    labels = [np.zeros((16, 16), np.uint8) for _ in series.paths]
    for k, label in enumerate(labels):
        label[2 + k, 9] = 1  # one labelled pixel a slice, at row 2 + k, column 9
    output = series_labels_to_nifti(labels, series, tmp_path / "out" / "chest.nii.gz", 2)
    written = nib.load(output)
    assert written.shape == (16, 16, 5) and np.allclose(written.affine, series.affine)
    assert int(written.header["sform_code"]) == 1 and int(written.header["qform_code"]) == 1
    volume = np.asarray(written.dataobj)
    for k, path in enumerate(series.paths):  # where each label lies in the patient
        (voxel,) = np.argwhere(volume[:, :, k] == 1)
        world = (written.affine @ [*voxel, k, 1])[:3]
        assert np.allclose(world, _patient_ras(pydicom.dcmread(path), 9, 2 + k), atol=1e-3)
    assert all(np.array_equal(a, b) for a, b in zip(read_label_slices(output), labels))


def test_series_that_are_no_regular_volume_stay_single_slices_with_a_reason(tmp_path):
    uneven = _copy_shuffled(SERIES_SAMPLES / "77654033" / "CT2", tmp_path / "gap")
    scouts = _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT2N", tmp_path / "scout")
    projections = _copy_shuffled(SERIES_SAMPLES / "98892003" / "MR700", tmp_path / "mip")
    repeated = tmp_path / "repeat"
    repeated.mkdir()
    for name in ("a.dcm", "b.dcm"):  # one slice twice: echoes or phases of one position
        (repeated / name).write_bytes(dicom_sample("CT_small.dcm").read_bytes())
    plain = tmp_path / "plain"
    plain.mkdir()
    no_geometry = []
    for index in range(2):
        dataset = pydicom.dcmread(dicom_sample("CT_small.dcm"))
        del dataset.ImagePositionPatient
        dataset.SeriesInstanceUID = "1.2.826.0.1.3680043.2.1125.1"  # not the repeat's series
        no_geometry.append(plain / f"{index}.dcm")
        dataset.save_as(no_geometry[-1])
    paths = [*uneven, *scouts, *projections, *sorted(repeated.iterdir()), *no_geometry]
    items, notes = stack_dicom_series(paths)
    assert items == paths  # every file segmented on its own
    reasons = {Path(note.split(":")[0]).name: note for note in notes}
    assert "uneven slice spacing (1.25 to 202.5 mm)" in reasons["gap"]
    assert "different orientations" in reasons["scout"]
    assert "different orientations" in reasons["mip"]
    assert "two slices at one position" in reasons["repeat"]
    assert "lacks ImagePositionPatient" in reasons["plain"]


def test_a_tilted_gantry_series_keeps_its_shear_in_the_sform_alone(tmp_path):
    files = _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT5N", tmp_path / "tilt")
    for path in files:  # each slice 0.5 mm further along y per 2.5 mm up: a tilted gantry
        dataset = pydicom.dcmread(path)
        height = float(dataset.ImagePositionPatient[2])
        dataset.ImagePositionPatient[1] = -143.0 + 0.2 * height
        dataset.save_as(path)
    ((series,), notes) = stack_dicom_series(files)
    assert notes == [] and series.sheared
    for k, path in enumerate(series.paths):
        assert np.allclose((series.affine @ [0, 15, k, 1])[:3],
                           _patient_ras(pydicom.dcmread(path), 0, 0), atol=1e-3)
    # the slices stay 2.5 mm apart along their normal, though each starts 0.5 mm further on
    assert voxel_spacing(tmp_path / "tilt")[0] == pytest.approx(2.5, rel=1e-4)
    labels = [np.zeros((16, 16), np.uint8) for _ in series.paths]
    written = nib.load(series_labels_to_nifti(labels, series, tmp_path / "tilt.nii", 2))
    assert np.allclose(written.affine, series.affine)
    assert int(written.header["sform_code"]) == 1 and int(written.header["qform_code"]) == 0


def _transposed_label_volume(labels: list[np.ndarray], series: DicomSeries, path: Path) -> None:
    """`labels` (upright slices in series order) saved as another tool may store them: axes
    (row, column, slice) with rows top-down and slices in reverse, the affine to match."""
    rows, slices = labels[0].shape[0], len(labels)
    to_ours = np.array([[0, 1, 0, 0], [-1, 0, 0, rows - 1], [0, 0, -1, slices - 1],
                        [0, 0, 0, 1]], float)  # (row, column, j) -> (column, row up, k)
    volume = np.stack(labels[::-1], axis=2)
    nib.save(nib.Nifti1Image(volume, series.affine @ to_ours), path)


def test_a_label_volume_in_another_orientation_lands_on_its_series_pixels(tmp_path):
    from visionsuite.core.medical import label_slices_for, series_folder

    _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT5N", tmp_path / "case1")
    dicomdir = SERIES_SAMPLES / "TINY_ALPHA" / "DICOMDIR"  # an index, not a slice: left out
    (tmp_path / "case1" / "DICOMDIR").write_bytes(dicomdir.read_bytes())
    series = series_folder(tmp_path / "case1")
    assert series.name == "case1" and len(series.paths) == 5
    assert read_slices(tmp_path / "case1")[0].shape == (16, 16, 3)
    rng = np.random.default_rng(0)
    labels = [rng.integers(0, 3, (16, 16)).astype(np.uint8) for _ in series.paths]
    _transposed_label_volume(labels, series, tmp_path / "other.nii.gz")
    found = label_slices_for(tmp_path / "other.nii.gz", tmp_path / "case1")
    assert all(np.array_equal(a, b) for a, b in zip(found, labels))
    ours = series_labels_to_nifti(labels, series, tmp_path / "ours.nii.gz", 3)
    found = label_slices_for(ours, tmp_path / "case1", binary=True)
    assert all(np.array_equal(a, np.where(b > 0, 255, 0)) for a, b in zip(found, labels))
    _transposed_label_volume(labels[:3], series, tmp_path / "short.nii.gz")
    with pytest.raises(UnreadableImage, match="short.nii.gz: its volume does not cover slice"):
        label_slices_for(tmp_path / "short.nii.gz", tmp_path / "case1")


def test_a_folder_of_dicom_files_that_are_not_one_series_is_a_clear_error(tmp_path):
    from visionsuite.core.medical import series_folder

    mixed = tmp_path / "mixed"
    mixed.mkdir()
    for source in (SERIES_SAMPLES / "98892003" / "MR2").iterdir():  # three series in one
        (mixed / source.name).write_bytes(source.read_bytes())
    with pytest.raises(VisionsuiteError, match=r"mixed: 7 DICOM file\(s\) but not one series"
                                               r".*\(3 series; give each series a folder"):
        series_folder(mixed)
    _copy_shuffled(SERIES_SAMPLES / "77654033" / "CT2", tmp_path / "gap")
    with pytest.raises(VisionsuiteError, match="gap: its DICOM slices do not stack into a "
                                               "volume: uneven slice spacing"):
        series_folder(tmp_path / "gap")
    (tmp_path / "pngs").mkdir()
    assert series_folder(tmp_path / "pngs") is None


def test_a_nifti_label_volume_on_another_grid_is_resampled_onto_its_images_slices(tmp_path):
    from visionsuite.core.medical import label_slices_for

    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    affine[:3, 3] = [-16, -14, 30]
    rng = np.random.default_rng(1)
    volume = rng.integers(0, 3, (12, 10, 4)).astype(np.uint8)  # (x, y, slice), as stored
    nib.save(nib.Nifti1Image(volume.astype(np.int16), affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(volume, affine), tmp_path / "same.nii.gz")
    expected = read_label_slices(tmp_path / "same.nii.gz")  # the same grid: slice by slice
    assert all(np.array_equal(a, b) for a, b in
               zip(label_slices_for(tmp_path / "same.nii.gz", tmp_path / "ct.nii.gz"), expected))
    # The labels stored as (slice reversed, y, x) by another tool, its affine to match.
    to_ours = np.array([[0, 0, -1, 11], [0, 1, 0, 0], [-1, 0, 0, 3], [0, 0, 0, 1]], float)
    stored = np.ascontiguousarray(volume.transpose(2, 1, 0)[::-1, :, ::-1])
    nib.save(nib.Nifti1Image(stored, affine @ to_ours), tmp_path / "other.nii.gz")
    found = label_slices_for(tmp_path / "other.nii.gz", tmp_path / "ct.nii.gz")
    assert len(found) == 4 and all(np.array_equal(a, b) for a, b in zip(found, expected))
    moved = affine.copy()
    moved[2, 3] += 100  # another scan's place
    nib.save(nib.Nifti1Image(stored, moved @ to_ours), tmp_path / "moved.nii.gz")
    with pytest.raises(UnreadableImage, match="moved.nii.gz: its volume does not cover slice 0 "
                                              "of its image ct.nii.gz"):
        label_slices_for(tmp_path / "moved.nii.gz", tmp_path / "ct.nii.gz")


def test_a_label_volume_of_its_images_size_pairs_voxel_by_voxel_whatever_its_affine(
        tmp_path, capfd):
    """Masks saved with an identity affine beside their image (a script's np.eye(4)) are
    common; of one size, the two pair as stored, as nnU-Net pairs them, with a warning."""
    from visionsuite.core.medical import label_slices_for

    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    volume = np.random.default_rng(2).integers(0, 2, (12, 10, 4)).astype(np.uint8)
    nib.save(nib.Nifti1Image(volume.astype(np.int16), affine), tmp_path / "ct.nii.gz")
    nib.save(nib.Nifti1Image(volume, np.eye(4)), tmp_path / "label.nii.gz")
    found = label_slices_for(tmp_path / "label.nii.gz", tmp_path / "ct.nii.gz")
    assert all(np.array_equal(a, b)
               for a, b in zip(found, read_label_slices(tmp_path / "label.nii.gz")))
    assert "label.nii.gz: its affine differs from its image ct.nii.gz's" in capfd.readouterr().err


def test_a_dicom_seg_holds_one_segment_a_class_on_each_image_of_its_series(tmp_path):
    import highdicom as hd

    from visionsuite.core.medical import labels_to_dicom_seg

    files = _copy_shuffled(SERIES_SAMPLES / "98892001" / "CT5N", tmp_path / "chest")
    (series,), _ = stack_dicom_series(files)
    shape = pydicom.dcmread(series.paths[0]).pixel_array.shape
    labels = [np.zeros(shape, np.uint8) for _ in series.paths]
    labels[0][2:6, 3:9] = 1
    labels[-1][8:12, 1:4] = 2  # a second class, on another slice only
    written = labels_to_dicom_seg(labels, series.paths, ["background", "lung", "nodule"],
                                  tmp_path / "out" / "chest_seg.dcm", "exp")
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["chest_seg.dcm"]
    seg = hd.seg.segread(written)
    assert [seg.get_segment_description(n).segment_label for n in (1, 2)] == ["lung", "nodule"]
    assert seg.SegmentationType == "BINARY" and seg.Manufacturer == "visionsuite"
    uids = [pydicom.dcmread(path).SOPInstanceUID for path in series.paths]
    back = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids, segment_numbers=[1, 2],
                                             combine_segments=True, relabel=True)
    assert np.array_equal(back, np.stack(labels))


def test_a_dicom_seg_that_does_not_read_back_is_not_kept(tmp_path, monkeypatch):
    import highdicom as hd

    from visionsuite.core.medical import labels_to_dicom_seg

    def unreadable(path):
        raise AttributeError("Sequence does not have the required attributes")

    monkeypatch.setattr(hd.seg, "segread", unreadable)
    source = dicom_sample("CT_small.dcm")
    labels = [np.zeros(pydicom.dcmread(source).pixel_array.shape, np.uint8)]
    with pytest.raises(ValueError, match="the SEG written does not read back"):
        labels_to_dicom_seg(labels, [source], ["background", "bone"], tmp_path / "x_seg.dcm",
                            "exp")
    assert list(tmp_path.iterdir()) == []  # neither the SEG nor its temporary file


def test_a_dicom_seg_labels_a_single_dicom_image(tmp_path):
    from visionsuite.core.medical import (dicom_labels_kind, labels_to_dicom_seg, read_slices,
                                          seg_label_slices)

    source = dicom_sample("CT_small.dcm")
    count = len(read_slices(source))
    shape = pydicom.dcmread(source).pixel_array.shape[-2:]
    labels = [np.zeros(shape, np.uint8) for _ in range(count)]
    labels[-1][2:9, 4:12] = 1
    labels[0][1:3, 1:3] = 2
    seg = labels_to_dicom_seg(labels, [source], ["background", "a", "b"], tmp_path / "s.dcm",
                              "test")
    assert dicom_labels_kind(seg) == "SEG" and dicom_labels_kind(source) is None
    read = seg_label_slices(seg, source)
    assert len(read) == count and all(np.array_equal(a, b) for a, b in zip(read, labels))
    binary = seg_label_slices(seg, source, binary=True)
    assert set(np.unique(binary[-1])) == {0, 255}


def itk_volume(values: np.ndarray, spacing=(0.8, 0.7, 2.5), origin=(12.0, -30.5, 7.0),
               direction=(0, 1, 0, -1, 0, 0, 0, 0, 1)):
    """A SimpleITK image of `values` (z, y, x) turned a quarter in the patient (LPS+)."""
    import SimpleITK as sitk

    image = sitk.GetImageFromArray(values)
    image.SetSpacing(spacing)
    image.SetOrigin(origin)
    image.SetDirection(direction)
    return image


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_nrrd_and_metaimage_volumes_read_as_the_nifti_itk_writes_of_them(tmp_path, suffix):
    import nibabel as nib
    import SimpleITK as sitk

    from visionsuite.core.medical import _load_volume, read_slices, voxel_spacing

    values = np.random.default_rng(0).integers(-1000, 1000, (4, 6, 5)).astype(np.int16)
    image = itk_volume(values)
    sitk.WriteImage(image, str(tmp_path / f"scan{suffix}"))
    sitk.WriteImage(image, str(tmp_path / "scan.nii.gz"))  # ITK's own LPS -> RAS
    ours, theirs = _load_volume(tmp_path / f"scan{suffix}"), nib.load(tmp_path / "scan.nii.gz")
    assert np.allclose(ours.affine, theirs.affine, atol=1e-5)
    assert np.array_equal(np.asarray(ours.dataobj), np.asarray(theirs.dataobj))
    read = read_slices(tmp_path / f"scan{suffix}", 1, window=[0, 2000])
    assert len(read) == 4 and all(np.array_equal(a, b) for a, b in zip(
        read, read_slices(tmp_path / "scan.nii.gz", 1, window=[0, 2000])))
    assert voxel_spacing(tmp_path / f"scan{suffix}") == pytest.approx((2.5, 0.7, 0.8))


@pytest.mark.parametrize("suffix", [".nrrd", ".mha", ".mhd"])
def test_predictions_of_nrrd_and_metaimage_volumes_are_written_in_their_format_over_them(
        tmp_path, suffix):
    import SimpleITK as sitk

    from visionsuite.core.medical import volume_suffix

    values = np.random.default_rng(0).choice([-1000, 1000], (4, 6, 5)).astype(np.int16)
    sitk.WriteImage(itk_volume(values), str(tmp_path / f"scan{suffix}"))
    reference = tmp_path / f"scan{suffix}"  # bright voxels are to be labelled, dark not
    slices = read_slices(reference, 1, window=[0, 2000])
    labels = [(item[..., 0] > 128).astype(np.uint8) for item in slices]
    output = tmp_path / "out" / f"scan{volume_suffix(reference)}"
    assert output.suffix == (".nrrd" if suffix == ".nrrd" else ".mha")
    assert labels_to_volume(labels, reference, output, 2) == output
    written, like = sitk.ReadImage(str(output)), sitk.ReadImage(str(reference))
    assert written.GetSize() == like.GetSize() and written.GetOrigin() == like.GetOrigin()
    assert written.GetSpacing() == like.GetSpacing()
    assert written.GetDirection() == pytest.approx(like.GetDirection())
    assert np.array_equal(sitk.GetArrayFromImage(written) > 0, sitk.GetArrayFromImage(like) > 0)
    assert all(np.array_equal(a, b) for a, b in zip(read_label_slices(output), labels))


def test_a_slicer_segmentation_names_its_classes_and_overlapping_layers_are_refused(tmp_path):
    import SimpleITK as sitk

    from visionsuite.core.medical import label_names_of, read_label_slices

    labels = np.zeros((3, 6, 5), np.uint8)
    labels[1, 2:4, 1:3], labels[2, 0, 0] = 2, 1
    image = itk_volume(labels)
    for number, (name, value) in enumerate((("tumour", 2), ("liver", 1))):
        image.SetMetaData(f"Segment{number}_Name", name)
        image.SetMetaData(f"Segment{number}_LabelValue", str(value))
        image.SetMetaData(f"Segment{number}_Layer", "0")
    sitk.WriteImage(image, str(tmp_path / "case.seg.nrrd"))
    assert label_names_of(tmp_path / "case.seg.nrrd") == (
        ["background", "liver", "tumour"], "the segments of case.seg.nrrd (3D Slicer)")
    assert [int(s.max()) for s in read_label_slices(tmp_path / "case.seg.nrrd")] == [0, 2, 1]
    layers = sitk.Compose([itk_volume(labels), itk_volume(labels)])
    sitk.WriteImage(layers, str(tmp_path / "layers.seg.nrrd"))
    with pytest.raises(VisionsuiteError, match="layers.seg.nrrd: 2 values a voxel"):
        read_label_slices(tmp_path / "layers.seg.nrrd")
