"""The segment task through the command line: train, evaluate, segment, export, data check."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import snapshot
from test_cli import assert_one_line_error, invoke
from test_segment import colour_masks, make_segment_folder

TINY_SEGMENT = ("--image-size", 32, "--epochs", 2, "--set", "model.levels=2",
                "--set", "model.filters=4", "--set", "train.tensorboard=false",
                "--set", "data.crops_per_image=4")


@pytest.fixture(scope="module")
def segment_data(tmp_path_factory):
    return make_segment_folder(tmp_path_factory.mktemp("seg") / "data", size=(50, 37))


@pytest.fixture(scope="module")
def segment_run(segment_data, tmp_path_factory):
    before = snapshot(segment_data)
    output = tmp_path_factory.mktemp("runs")
    result = invoke("train", "segment", "--data", segment_data, "--output", output, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    assert snapshot(segment_data) == before  # nothing is written into the dataset
    return output / "segment" / "exp"


def test_train_writes_the_run_folder_contract(segment_run):
    for name in ("config.yaml", "model.keras", "labels.txt", "metrics.json", "history.csv",
                 "curves.png", "val_predictions.png"):
        assert (segment_run / name).is_file(), name
    metrics = json.loads((segment_run / "metrics.json").read_text())
    for key in ("dice", "iou", "pixel_accuracy", "sensitivity", "specificity", "roc_auc"):
        assert 0 <= metrics[key] <= 1, key
    assert set(metrics["per_class"]) == {"background", "foreground"}
    assert metrics["pixels"] == 2 * 50 * 37  # whole val images, not tiles


def test_segment_writes_masks_at_the_input_size(segment_run, segment_data, tmp_path):
    images = segment_data / "val" / "images"
    result = invoke("segment", segment_run, images, "--output", tmp_path / "out", "--overlay",
                    "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2
    mask = np.array(Image.open(rows[0]["mask"]))
    assert mask.shape == (37, 50) and set(np.unique(mask)) <= {0, 255}
    assert Image.open(rows[0]["overlay"]).size == (50, 37)
    areas = rows[0]["areas"]
    assert areas["background"]["pixels"] + areas["foreground"]["pixels"] == 50 * 37


def test_a_datasets_folder_is_segmented_without_its_masks(segment_run, segment_data, tmp_path):
    result = invoke("segment", segment_run, segment_data / "val", "--output", tmp_path / "out",
                    "--json")
    assert result.exit_code == 0, result.output
    assert [Path(row["image"]).parent.name for row in json.loads(result.stdout)] == \
        ["images", "images"]
    assert f"note: {segment_data / 'val'} is a dataset of images and their masks: its 2 " \
        "label file(s) left out (name them to segment them)" in result.stderr
    masks = sorted((segment_data / "val" / "masks").iterdir())
    result = invoke("segment", segment_run, *masks, "--output", tmp_path / "named", "--json")
    assert result.exit_code == 0, result.output  # named, a mask is segmented as any image
    assert len(json.loads(result.stdout)) == 2


def test_a_datasets_overlay_pictures_are_not_segmented(segment_run, segment_data, tmp_path):
    """CoNSeP ships Overlay/ (its images with their nuclei drawn) beside Images/ and Labels/:
    before, `segment` of its folder wrote test_1_2.png, the overlay's mask, beside test_1.png.
    Named, an overlay is segmented, once even where its folder is named too."""
    import shutil

    dataset = shutil.copytree(segment_data / "val", tmp_path / "val")
    shutil.copytree(dataset / "images", dataset / "Overlay")
    overlay = sorted((dataset / "Overlay").iterdir())[0]
    result = invoke("segment", segment_run, dataset, "--output", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert [Path(row["image"]).parent.name for row in json.loads(result.stdout)] == \
        ["images", "images"]
    assert f"note: {dataset} is a dataset of images and their masks: its 2 label file(s) and " \
        "its 2 overlay picture(s) in Overlay/ left out (name them to segment them)" \
        in result.stderr
    result = invoke("segment", segment_run, dataset, overlay, overlay, "--output",
                    tmp_path / "named", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(Path(row["image"]).parent.name for row in json.loads(result.stdout)) == \
        ["Overlay", "images", "images"]
    assert "its 1 overlay picture(s) in Overlay/ left out" in result.stderr


def test_probability_maps_are_written_beside_the_masks(segment_run, segment_data, tmp_path):
    image = segment_data / "val" / "images" / "0.png"
    result = invoke("segment", segment_run, image, "--output", tmp_path / "out",
                    "--probabilities", "--all-components", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert list(row["probabilities"]) == ["foreground"]  # class 0's is 1 minus it
    path = Path(row["probabilities"]["foreground"])
    assert path.name == "0_prob_foreground.png"
    with Image.open(path) as written:
        probability = np.array(written).astype(np.float64) / 65535
        assert written.mode.startswith("I") and probability.shape == (37, 50)
    mask = np.array(Image.open(row["mask"])) > 0
    # the mask, before the run's largest-component post-processing: foreground from 0.5
    assert np.mean((probability >= 0.5) == mask) > 0.999
    assert 0 < probability.min() < probability.max() < 1  # soft, not the mask again


def test_evaluate_and_int8_export_report_the_same_metrics(segment_run, tmp_path, capfd):
    result = invoke("evaluate", segment_run, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert "dice" in json.loads((tmp_path / "m.json").read_text())
    result = invoke("export", segment_run, "--quantize", "int8", "--output", tmp_path,
                    "--calibration", 8)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "exp-int8.json").read_text())
    assert set(report["keras"]) == set(report["tflite"]) >= {"dice", "pixel_accuracy"}
    assert 0 <= report["agreement"] <= 1
    assert "fully_quantize" not in capfd.readouterr().err  # the quantizer's C++ notice


def test_evaluate_scores_a_test_folder_with_split_test(segment_run, segment_data, tmp_path):
    from test_splits import assert_the_test_split_scores_as_val_did

    data = tmp_path / "data"
    shutil.copytree(segment_data, data)
    shutil.copytree(data / "val", data / "test")
    assert "dice" in assert_the_test_split_scores_as_val_did(segment_run, data, tmp_path)


def test_tta_predicts_every_tile_in_each_trained_view(segment_run, segment_data, tmp_path,
                                                     monkeypatch, tiny_run):
    """--tta: the shipped recipe trains with both flips and quarter turns, so each tile is
    predicted in the square's 8 views; data.tta in a run's config turns it on, --no-tta off.
    A model of another task refuses it."""
    import yaml

    from visionsuite.core.models import KerasPredictor

    tiles_seen = []
    plain_predict = KerasPredictor.predict

    def counting(self, images):
        tiles_seen.append(len(images))
        return plain_predict(self, images)

    monkeypatch.setattr(KerasPredictor, "predict", counting)

    def tiles_of(*args):
        tiles_seen.clear()
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        return sum(tiles_seen), result

    plain, _ = tiles_of("evaluate", segment_run)
    with_tta, result = tiles_of("evaluate", segment_run, "--tta")
    assert plain > 0 and with_tta == 8 * plain
    assert "dice" in result.stdout
    masks, result = tiles_of("segment", segment_run, segment_data / "val" / "images", "--tta",
                             "--output", tmp_path / "masks", "--json")
    assert masks == with_tta  # the same 2 val images
    assert np.array(Image.open(json.loads(result.stdout)[0]["mask"])).shape == (37, 50)

    run = tmp_path / "tta_run"
    shutil.copytree(segment_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["data"]["tta"] = True
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert tiles_of("evaluate", run)[0] == with_tta
    assert tiles_of("evaluate", run, "--no-tta")[0] == plain

    assert_one_line_error(invoke("evaluate", tiny_run, "--tta"), "--tta", "for segment models",
                          "classify model")


def test_the_embedded_default_learns_its_nuclei_inside_the_field_of_view(tmp_path):
    """`visionsuite train segment` without --data: the generated cells, their own recipe (in 6
    of its 12 epochs)."""
    from visionsuite.datasets import CELLS_IMAGES, CELLS_SIZE, cells_dataset

    data = cells_dataset()  # the test-private cache's, as training finds it
    before = snapshot(data)
    result = invoke("train", "segment", "--output", tmp_path, "--epochs", 6,
                    "--set", "train.tensorboard=false")
    assert result.exit_code == 0, result.output
    assert snapshot(data) == before
    metrics = json.loads((tmp_path / "segment" / "exp" / "metrics.json").read_text())
    assert set(metrics["per_class"]) == {"background", "nucleus"}
    # the corners outside the round field of view are not scored
    whole = CELLS_IMAGES["val"] * CELLS_SIZE[0] * CELLS_SIZE[1]
    assert 0.85 * whole < metrics["pixels"] < whole
    # 0.97 after 6 epochs (0.98 after 12) on a Zen 3; an untrained model calls everything
    # background (0)
    assert metrics["per_class"]["nucleus"]["dice"] > 0.9, metrics


def test_data_check_reports_classes_and_refuses_unpaired(segment_data, tmp_path):
    result = invoke("data", "check", "segment", segment_data)
    assert result.exit_code == 0, result.output
    assert "0 background" in result.output and "1 foreground" in result.output
    broken = make_segment_folder(tmp_path / "broken")
    (broken / "train" / "masks" / "0.png").unlink()
    assert_one_line_error(invoke("data", "check", "segment", broken), "without a mask")
    assert_one_line_error(invoke("train", "segment", "--data", broken), "without a mask")


def test_bad_segment_inputs_are_one_line_errors(segment_run, segment_data, tmp_path):
    assert_one_line_error(invoke("segment", segment_run, tmp_path / "none.png"), "no such file")
    assert_one_line_error(invoke("segment", segment_run, tmp_path), "no image files")
    image = segment_data / "val" / "images" / "0.png"
    assert_one_line_error(invoke("segment", segment_run, image, "--threshold", 2),
                          "--threshold 2.0: must be between 0 and 1")
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert_one_line_error(invoke("segment", segment_run, image, "--output", blocker),
                          f"{blocker}: cannot write the masks there ({blocker} is not a folder)")


def test_colour_masks_train_and_segment_into_masks_of_their_colours(tmp_path):
    from visionsuite.core.images import read_mask

    root = colour_masks(make_segment_folder(tmp_path / "d", size=(50, 37)),
                        {"left": (0, 255, 0), "right": (255, 0, 0)})
    check = invoke("data", "check", "segment", root)
    assert check.exit_code == 0, check.output
    assert "mask colours: #000000, #00ff00, #ff0000" in check.output
    assert "1 #00ff00" in check.output and "2 #ff0000" in check.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "#00ff00", "#ff0000"]
    assert "'#00ff00'" in (run / "config.yaml").read_text()
    result = invoke("segment", run, root / "val" / "images" / "0.png", "--output",
                    tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    written = Image.open(json.loads(result.stdout)[0]["mask"])
    assert written.mode == "P" and written.getpalette()[:9] == [0, 0, 0, 0, 255, 0, 255, 0, 0]
    assert set(np.unique(read_mask(written.filename))) <= {0, 1, 2}  # read back as classes


def test_another_modality_trains_with_only_data_changed(tmp_path):
    """Retina-like: larger non-square TIFF images, GIF masks, region-of-interest masks."""
    root = tmp_path / "retina"
    make_segment_folder(root, train=3, val=1, size=(90, 61), roi=True)
    for path in list(root.rglob("images/*.png")):
        Image.open(path).convert("RGB").save(path.with_suffix(".tif"))
        path.unlink()
    for path in list(root.rglob("masks/*.png")):
        Image.open(path).save(path.with_suffix(".gif"))
        path.unlink()
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "segment" / "exp" / "metrics.json").read_text())
    assert metrics["pixels"] == 61 * 45  # only the left half, inside the region of interest


def test_tiff_stacks_evaluate_as_their_pages_and_segment_into_a_mask_stack(
        segment_run, segment_data, tmp_path):
    # The same val pairs as one image stack and one mask stack (ISBI 2012's own layout)
    stacked = tmp_path / "stacked"
    for kind in ("images", "masks"):
        (stacked / "val" / kind).mkdir(parents=True)
        first, *rest = [Image.open(path)
                        for path in sorted((segment_data / "val" / kind).iterdir())]
        first.save(stacked / "val" / kind / "volume.tif", save_all=True, append_images=rest)
    # Without the largest-component post-processing, which joins components across a
    # stack's pages (a stack is a volume) but not across separate images
    run = tmp_path / "run"
    shutil.copytree(segment_run, run)
    settings = run / "inference.json"
    if settings.is_file():
        settings.write_text(json.dumps({key: value for key, value
                                        in json.loads(settings.read_text()).items()
                                        if key != "keep_largest_component"}))
    scores = []
    for data in (segment_data, stacked):
        result = invoke("evaluate", run, "--data", data, "--json", tmp_path / "m.json")
        assert result.exit_code == 0, result.output
        metrics = json.loads((tmp_path / "m.json").read_text())
        scores.append((metrics["images"], metrics["pixels"], metrics["dice"]))
    assert scores[0] == scores[1], scores
    result = invoke("segment", segment_run, stacked / "val" / "images", "--output",
                    tmp_path / "out", "--json", "--probabilities")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)[0]
    assert row["slices"] == 2 and row["mask"].endswith("volume.tif")
    masks = Image.open(row["mask"])
    assert masks.n_frames == 2 and masks.size == (50, 37)
    soft = Image.open(row["probabilities"]["foreground"])  # a 16-bit stack beside it
    assert soft.n_frames == 2 and soft.size == (50, 37) and soft.mode.startswith("I;16")


def test_12_bit_images_train_and_segment_from_their_bit_depth_also_from_the_exported_file(
        segment_data, tmp_path):
    """A 12-bit camera's images in 16-bit TIFFs (values up to 4095): read from 0..4095 by the
    run, evaluate, the exported file and segment, not from 0..65535 (16 grey levels)."""
    from visionsuite.core.images import read_image_slices
    from visionsuite.core.models import resolve_model

    from visionsuite.config import read_yaml

    data, deepest = tmp_path / "twelve", 0
    shutil.copytree(segment_data, data)
    for path in sorted(data.glob("*/images/*.png")):
        twelve = np.asarray(Image.open(path).convert("L")).astype(np.uint16) * 16
        Image.fromarray(twelve).save(path.with_suffix(".tif"))
        path.unlink()
        deepest = max(deepest, int(twelve.max()))
    assert 2048 <= deepest <= 4095
    result = invoke("data", "check", "segment", data)
    assert f"16-bit images with values up to {deepest}: read as 12-bit, 0..4095 to 0..255 " \
           "(data.window=[2047.5, 4095.0]) by a new run" in result.output
    result = invoke("train", "segment", "--data", data, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert "read as 12-bit" in result.output
    assert read_yaml(run / "config.yaml")["data"]["window"] == [2047.5, 4095.0]
    image = read_image_slices(next(data.glob("val/images/*.tif")), 3, [2047.5, 4095.0])[0]
    assert 200 < image.max() and len(np.unique(image)) > 64  # the PNG's own grey levels
    result = invoke("export", run, "--quantize", "float16")
    assert result.exit_code == 0, result.output
    bare = tmp_path / "bare.tflite"
    shutil.copy(next((run / "exported").glob("*.tflite")), bare)
    assert resolve_model(bare).settings["window"] == [2047.5, 4095.0]  # packed in the file
    masks = []
    for model in (run, bare):
        result = invoke("segment", model, data / "val" / "images", "--output",
                        tmp_path / f"{model.name}_masks", "--json", "--all-components")
        assert result.exit_code == 0, result.output
        masks.append(np.array(Image.open(json.loads(result.stdout)[0]["mask"])))
    assert np.mean(masks[0] == masks[1]) > 0.98


def test_imagej_hyperstacks_train_on_their_channels_and_segment(segment_data, tmp_path):
    """Fluorescence microscopy as Fiji saves it: a 16-bit hyperstack of two channels per
    image (the discs bright in the first, noise in the second)."""
    from test_images import save_hyperstack

    data = tmp_path / "cells"
    shutil.copytree(segment_data, data)
    rng = np.random.default_rng(0)
    for path in sorted(data.glob("*/images/*.png")):
        first = np.asarray(Image.open(path).convert("L")).astype(np.uint16) * 16
        second = rng.integers(0, 4096, first.shape).astype(np.uint16)
        save_hyperstack(path.with_suffix(".tif"), [first, second], channels=2)
        path.unlink()
    result = invoke("data", "check", "segment", data)
    assert "images of 2 channels: channel 0, channel 1" in result.output, result.output
    result = invoke("train", "segment", "--data", data, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    assert "the images have 2 channels" in result.output
    run = tmp_path / "segment" / "exp"
    result = invoke("segment", run, data / "val" / "images", "--output", tmp_path / "masks",
                    "--overlay", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert len(rows) == 2 and np.array(Image.open(rows[0]["mask"])).shape == (37, 50)
    assert Image.open(rows[0]["overlay"]).size == (50, 37)


def write_nifti_pair(images, masks, stem: str, seed: int, affine) -> None:
    """A 40x36x3 volume of noisy bright discs (intensities in CT-like units) and its labels."""
    import nibabel as nib

    rng = np.random.default_rng(seed)
    x, y = np.mgrid[:40, :36]
    labels = np.zeros((40, 36, 3), np.uint8)
    for k in range(3):
        cx, cy, r = rng.integers(10, 30), rng.integers(10, 26), rng.integers(5, 9)
        labels[:, :, k] = (x - cx) ** 2 + (y - cy) ** 2 < r ** 2
    volume = (labels * 400.0 - 200 + rng.normal(0, 30, labels.shape)).astype(np.int16)
    nib.save(nib.Nifti1Image(volume, affine), images / f"{stem}.nii.gz")
    nib.save(nib.Nifti1Image(labels, affine), masks / f"{stem}.nii.gz")


def test_nifti_volumes_train_and_segment_into_a_label_volume_with_their_affine(tmp_path):
    import nibabel as nib

    affine = np.diag([0.8, 0.8, 2.5, 1.0])
    affine[:3, 3] = [-16, -14, 30]
    root = tmp_path / "ct"
    for split, stems in (("train", ("a", "b", "c")), ("val", ("d",))):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for stem in stems:
            write_nifti_pair(root / split / "images", root / split / "masks", stem,
                             ord(stem), affine)
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "NIfTI" in result.output and "1 foreground" in result.output
    assert "voxel sizes: 0.8 x 0.8 mm, slices 2.5 mm apart (4)" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.window=[0, 800]")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 3 * 40 * 36  # 3 slices
    # surface distances of the volume as a whole, in mm: its header's voxel size
    assert metrics["distance_unit"] == "mm" and "hd95" in metrics["per_volume"][0]
    volume = root / "val" / "images" / "d.nii.gz"
    result = invoke("segment", run, volume, "--output", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    written = nib.load(row["mask"])
    assert row["mask"].endswith("d.nii.gz") and row["slices"] == 3
    assert written.shape == (40, 36, 3) and np.allclose(written.affine, affine)
    assert set(np.unique(np.asarray(written.dataobj))) <= {0, 1}
    voxel = 0.8 * 0.8 * 2.5
    areas = row["areas"]
    assert areas["foreground"]["volume_mm3"] == pytest.approx(
        areas["foreground"]["pixels"] * voxel, rel=1e-4)
    result = invoke("segment", run, volume, "--output", tmp_path / "soft", "--json",
                    "--probabilities", "--all-components")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    soft = nib.load(row["probabilities"]["foreground"])
    assert row["probabilities"]["foreground"].endswith("d_prob_foreground.nii.gz")
    assert soft.shape == (40, 36, 3) and np.allclose(soft.affine, affine)
    values = np.asarray(soft.dataobj)
    assert values.dtype == np.float32 and 0 <= values.min() <= values.max() <= 1
    labels = np.asarray(nib.load(row["mask"]).dataobj)
    assert np.mean((values >= 0.5) == (labels == 1)) > 0.999


def test_dicom_slices_train_with_a_ct_window_and_segment_to_png_or_a_volume(tmp_path):
    import pydicom
    from pydicom.data import get_testdata_file

    source = get_testdata_file("CT_small.dcm", download=False)
    dataset = pydicom.dcmread(source)
    hounsfield = dataset.pixel_array * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
    mask = np.where(hounsfield > 100, 255, 0).astype(np.uint8)  # denser than soft tissue
    root = tmp_path / "dicom"
    for split, stems in (("train", ("s1", "s2")), ("val", ("s3",))):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for stem in stems:
            shutil.copy(source, root / split / "images" / f"{stem}.dcm")
            Image.fromarray(mask).save(root / split / "masks" / f"{stem}.png")
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "DICOM CT MONOCHROME2" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.window=[40, 400]")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    image = root / "val" / "images" / "s3.dcm"
    result = invoke("segment", run, image, "--output", tmp_path / "out", "--json",
                    "--window", 40, 400, "--dicom-seg")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["mask"].endswith("s3.png")
    assert np.array(Image.open(row["mask"])).shape == (128, 128)
    assert_segments_its_images(row["dicom_seg"], [image],
                               [np.array(Image.open(row["mask"])) // 255])
    # A series, one file a slice as scanners write it: one label volume in its geometry.
    import nibabel as nib

    (tmp_path / "series").mkdir()
    for index, height in enumerate((-65.7, -75.7, -70.7)):  # files out of slice order
        dataset.ImagePositionPatient[2] = height
        dataset.SOPInstanceUID = pydicom.uid.generate_uid()
        dataset.save_as(tmp_path / "series" / f"IM{index:04d}")
    result = invoke("segment", run, tmp_path / "series", "--output", tmp_path / "out",
                    "--json", "--overlay", "--probabilities", "--dicom-seg")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["slices"] == 3 and len(row["overlays"]) == 3
    assert "slice 3/3" in result.stderr  # the progress bar moves within a volume
    written = nib.load(row["mask"])
    assert row["mask"].endswith("series.nii.gz") and written.shape == (128, 128, 3)
    assert np.allclose(written.affine[:3, 2], [0, 0, 5])  # slices 5 mm apart, upwards
    soft = nib.load(row["probabilities"]["foreground"])  # float32, in the same geometry
    assert soft.shape == (128, 128, 3) and np.allclose(soft.affine, written.affine)
    assert soft.get_data_dtype() == np.float32
    voxel = float(dataset.PixelSpacing[0]) ** 2 * 5
    foreground = row["areas"]["foreground"]
    assert foreground["volume_mm3"] == pytest.approx(foreground["pixels"] * voxel, rel=1e-4)
    # The DICOM SEG: each slice of the label volume, on the file of that slice.
    import highdicom as hd

    volume = np.asarray(written.dataobj)
    in_order = [tmp_path / "series" / f"IM{index:04d}" for index in (1, 2, 0)]  # bottom up
    assert_segments_its_images(row["dicom_seg"], in_order,
                               [np.flipud(volume[:, :, k].T) for k in range(3)])
    # A secondary capture's frames (highdicom 0.28 writes their SEG but cannot read it back)
    # and a file that is not DICOM: their masks alone, and a warning; no SEG file left.
    frames = get_testdata_file("SC_rgb_rle_2frame.dcm", download=False)
    result = invoke("segment", run, frames, root / "val" / "masks" / "s3.png", "--output",
                    tmp_path / "more", "--dicom-seg", "--json")
    assert result.exit_code == 0, result.output
    two, png = json.loads(result.stdout)
    assert len(two["masks"]) == 2
    if "dicom_seg" in two:  # a later highdicom that reads it back: then the SEG is kept
        assert hd.seg.segread(two["dicom_seg"]).NumberOfFrames >= 1
    else:
        assert "SC_rgb_rle_2frame.dcm: no DICOM SEG: the SEG written does not read back" \
            in result.stderr
        assert not list((tmp_path / "more").glob("*.dcm*"))
    assert not list((tmp_path / "more").glob(".*"))  # no temporary file either way
    assert "dicom_seg" not in png and "s3.png: not DICOM; no DICOM SEG" in result.stderr


def assert_segments_its_images(seg_path, images, classes):
    """A DICOM SEG (read back with highdicom) whose segment 1, `foreground`, is `classes` on
    each of `images` (DICOM files), and that references them."""
    import highdicom as hd
    import pydicom

    seg = hd.seg.segread(seg_path)
    assert seg.number_of_segments == 1
    assert seg.get_segment_description(1).segment_label == "foreground"
    uids = [pydicom.dcmread(path).SOPInstanceUID for path in images]
    pixels = seg.get_pixels_by_source_instance(source_sop_instance_uids=uids,
                                               segment_numbers=[1], combine_segments=True)
    assert any(mask.any() for mask in classes)  # something was segmented
    assert np.array_equal(pixels, np.stack(classes)), "SEG frames differ from the masks"


def write_series_case(images: Path, masks: Path, case: str, number: int) -> list[np.ndarray]:
    """`images/<case>/IM000k`: three CT slices, one file each (CT_small rolled down by 9 rows
    a slice, 5 mm apart, listed against their order), and `masks/<case>.nii.gz`: what is
    denser than soft tissue, stored as axes (row, column, slice) with slices reversed, as
    another tool may write it. Returns the masks in slice order, upright."""
    import nibabel as nib
    import pydicom
    from pydicom.data import get_testdata_file

    from visionsuite.core.medical import series_folder

    dataset = pydicom.dcmread(get_testdata_file("CT_small.dcm", download=False))
    dataset.SeriesInstanceUID = f"1.2.826.0.1.3680043.2.1125.{number}"
    (images / case).mkdir(parents=True)
    expected = []
    for k in range(3):
        pixels = np.roll(dataset.pixel_array, 9 * (k + number), axis=0)
        dataset.PixelData = pixels.tobytes()
        dataset.ImagePositionPatient[2] = -75.7 + 5 * k
        dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.2.1125.{number}.{k + 1}"
        dataset.save_as(images / case / f"IM{2 - k:04d}")
        hounsfield = pixels * float(dataset.RescaleSlope) + float(dataset.RescaleIntercept)
        expected.append((hounsfield > 100).astype(np.uint8))
    affine = series_folder(images / case).affine
    to_ours = np.array([[0, 1, 0, 0], [-1, 0, 0, 127], [0, 0, -1, 2], [0, 0, 0, 1]], float)
    masks.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.stack(expected[::-1], axis=2), affine @ to_ours),
             masks / f"{case}.nii.gz")
    return expected


def test_dicom_series_folders_train_with_label_volumes_in_their_geometry(tmp_path):
    from visionsuite.tasks.segment.decode import decode_pairs
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "ct"
    expected = {}
    for number, (split, case) in enumerate((("train", "p1"), ("train", "p2"), ("val", "p3"))):
        expected[case] = write_series_case(root / split / "images", root / split / "masks",
                                           case, number)
    pairs = index_pairs(root).splits
    assert [pair.image.name for pair in pairs["train"]] == ["p1", "p2"]
    decoded, kept, _ = decode_pairs(pairs["val"], 3, workers=1, window=[40, 400], binary=True)
    assert [item.slice for item in decoded] == [0, 1, 2]
    for item, mask in zip(decoded, expected["p3"]):  # each label on its own pixels
        assert np.array_equal(item.mask, mask * 255)
        # the series' voxel size: slices 5 mm apart, CT_small's pixels
        assert item.spacing == pytest.approx((5.0, 0.661468, 0.661468))
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "DICOM CT MONOCHROME2 series" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.window=[40, 400]",
                    "--set", "data.binary_masks=true")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "runs" / "segment" / "exp" / "metrics.json").read_text())
    assert metrics["pixels"] == 3 * 128 * 128
    assert metrics["distance_unit"] == "mm"  # the series measured as one volume


def test_dicom_series_train_with_their_dicom_seg_labels_named_by_its_segments(tmp_path):
    """TCIA's and 3D Slicer's labels of a series: a DICOM SEG (masks/<case>.dcm), its frames
    referencing the slices they label; two segments, the second on one slice only."""
    from visionsuite.core.medical import labels_to_dicom_seg, series_folder
    from visionsuite.tasks.segment.decode import decode_pairs
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "ct"
    expected = {}
    for number, (split, case) in enumerate((("train", "p1"), ("train", "p2"), ("val", "p3"))):
        masks = write_series_case(root / split / "images", root / split / "masks", case, number)
        (root / split / "masks" / f"{case}.nii.gz").unlink()
        masks[1][:6, :6] = 2  # a calcification, say
        expected[case] = masks
        labels_to_dicom_seg(masks, series_folder(root / split / "images" / case).paths,
                            ["background", "bone", "calcification"],
                            root / split / "masks" / f"{case}.dcm", "test")
    index = index_pairs(root)
    assert index.class_names == ["background", "bone", "calcification"]
    assert index.names_from == "the segments of p1.dcm (DICOM SEG)"
    decoded, _, _ = decode_pairs(index.splits["val"], 3, workers=1, window=[40, 400])
    for item, mask in zip(decoded, expected["p3"]):
        assert np.array_equal(item.mask, mask)
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "classes (named in the segments of p1.dcm (DICOM SEG)): 0 background" in \
        result.output, result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.window=[40, 400]")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "bone", "calcification"]
    # segment on a case folder as TCIA lays one out, its SEG beside its series: the SEG left out
    case = tmp_path / "case"
    case.mkdir()
    (root / "val" / "images" / "p3").rename(case / "p3")
    (root / "val" / "masks" / "p3.dcm").rename(case / "p3_seg.dcm")
    result = invoke("segment", run, case, "--output", tmp_path / "predicted", "--json")
    assert result.exit_code == 0, result.output
    assert "p3_seg.dcm: a DICOM SEG (labels of other images), not an image; left out" in \
        result.output
    assert [Path(row["image"]).name for row in json.loads(result.stdout)] == ["p3"]
    (case / "p3").rename(root / "val" / "images" / "p3")
    # a SEG of another series: one line naming it
    (root / "val" / "masks" / "p3.dcm").write_bytes((root / "train" / "masks" / "p1.dcm")
                                                    .read_bytes())
    result = invoke("data", "check", "segment", root)
    assert "p3.dcm: a DICOM SEG of other images than p3's" in result.output, result.output


def write_rtstruct(path: Path, slices: list[Path],
                   structures: list[tuple[str, list[tuple[int, list, bool]]]]) -> None:
    """An RTSTRUCT outlining `structures` (name, contours: slice index, corners as (column,
    row) pixel centres, whether the contour names its slice) on the series `slices`, in
    patient mm as planning systems store them; a POINT contour of the first as well."""
    import pydicom
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    headers = [pydicom.dcmread(item) for item in slices]

    def patient(index: int, corners) -> list[float]:
        header = headers[index]
        origin = np.array(header.ImagePositionPatient, float)
        along_row, along_column = (np.array(header.ImageOrientationPatient[:3], float),
                                   np.array(header.ImageOrientationPatient[3:], float))
        rows, columns = (float(v) for v in header.PixelSpacing)
        return [float(v) for col, row in corners
                for v in origin + col * columns * along_row + row * rows * along_column]

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset = Dataset()
    dataset.file_meta = meta
    dataset.SOPClassUID, dataset.SOPInstanceUID = meta.MediaStorageSOPClassUID, \
        meta.MediaStorageSOPInstanceUID
    dataset.Modality = "RTSTRUCT"
    dataset.StructureSetROISequence, dataset.ROIContourSequence = [], []
    for number, (name, contours) in enumerate(structures, 1):
        roi = Dataset()
        roi.ROINumber, roi.ROIName = number, name
        dataset.StructureSetROISequence.append(roi)
        outline = Dataset()
        outline.ReferencedROINumber = number
        outline.ContourSequence = []
        for index, corners, names_slice in contours + ([(0, [(5, 5)], True)] if number == 1
                                                       else []):
            contour = Dataset()
            contour.ContourGeometricType = "CLOSED_PLANAR" if len(corners) > 1 else "POINT"
            contour.NumberOfContourPoints = len(corners)
            contour.ContourData = patient(index, corners)
            if names_slice:
                image = Dataset()
                image.ReferencedSOPInstanceUID = headers[index].SOPInstanceUID
                contour.ContourImageSequence = [image]
            outline.ContourSequence.append(contour)
        dataset.ROIContourSequence.append(outline)
    dataset.save_as(path, enforce_file_format=True)


def square(low: int, high: int, left: int | None = None, right: int | None = None) -> list:
    left, right = (low, high) if left is None else (left, right)
    return [(left, low), (right, low), (right, high), (left, high)]


def test_dicom_series_train_with_rtstruct_contours_filled_on_their_slices(tmp_path):
    """A radiotherapy structure set: a body outlined on every slice (a hole cut on the middle
    one by a contour inside it; the last contour found by its plane, naming no slice) and a
    tumour in it on the first slice, kept over the body."""
    from visionsuite.core.medical import series_folder
    from visionsuite.tasks.segment.decode import decode_pairs
    from visionsuite.tasks.segment.index import index_pairs

    root = tmp_path / "rt"
    for number, (split, case) in enumerate((("train", "p1"), ("train", "p2"), ("val", "p3"))):
        write_series_case(root / split / "images", root / split / "masks", case, number)
        (root / split / "masks" / f"{case}.nii.gz").unlink()
        slices = series_folder(root / split / "images" / case).paths
        write_rtstruct(root / split / "masks" / f"{case}.dcm", slices, [
            ("body", [(0, square(20, 100), True), (1, square(20, 100), True),
                      (1, square(40, 60), True), (2, square(20, 100), False)]),
            ("tumour", [(0, square(70, 90, 30, 50), True)])])
    index = index_pairs(root)
    assert index.class_names == ["background", "body", "tumour"]
    assert index.names_from == "the structures of p1.dcm (DICOM RTSTRUCT)"
    decoded, _, _ = decode_pairs(index.splits["val"], 3, workers=1, window=[40, 400])
    first, middle, last = (item.mask for item in decoded)
    assert (first == 2).sum() == 21 * 21 and first[80, 40] == 2 and first[30, 30] == 1
    assert (first > 0).sum() == 81 * 81 and first[5, 5] == 0  # the POINT is no area
    assert (middle == 1).sum() == 81 * 81 - 21 * 21 and middle[50, 50] == 0
    assert (last == 1).sum() == 81 * 81
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "classes (named in the structures of p1.dcm (DICOM RTSTRUCT)): 0 background" in \
        result.output, result.output
    import pydicom

    slices = series_folder(root / "val" / "images" / "p3").paths
    write_rtstruct(root / "val" / "masks" / "p3.dcm", slices,
                   [("body", [(0, square(2, 9), False)])])
    header = pydicom.dcmread(root / "val" / "masks" / "p3.dcm")
    header.ROIContourSequence[0].ContourSequence[0].ContourData[2] += 2.0  # off every slice
    header.save_as(root / "val" / "masks" / "p3.dcm")
    result = invoke("data", "check", "segment", root)
    assert "p3.dcm: a contour of body lies on no slice of p3" in result.output, result.output


def test_nrrd_volumes_with_slicer_segmentations_train_and_segment_in_their_geometry(tmp_path):
    """3D Slicer's files: case.nrrd volumes, their case.seg.nrrd segmentations naming the
    segments; a MetaImage (.mha) volume segmented into a MetaImage label volume that overlays
    it."""
    import SimpleITK as sitk

    def itk(values, segments=()):
        image = sitk.GetImageFromArray(values)
        image.SetSpacing((0.9, 0.9, 3.0))
        image.SetOrigin((-40.0, 25.0, 12.0))
        for number, name in enumerate(segments):
            image.SetMetaData(f"Segment{number}_Name", name)
            image.SetMetaData(f"Segment{number}_LabelValue", str(number + 1))
        return image

    rng = np.random.default_rng(0)
    root = tmp_path / "slicer"
    for split, cases in (("train", 3), ("val", 1)):
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for case in range(cases):
            labels = np.zeros((2, 40, 48), np.uint8)
            labels[:, 8 + case:24 + case, 10:30] = 1
            labels[1, 12:16, 14:18] = 2
            scan = (labels * 300.0 + rng.normal(0, 20, labels.shape)).astype(np.int16)
            sitk.WriteImage(itk(scan), str(root / split / "images" / f"case{case}.nrrd"))
            sitk.WriteImage(itk(labels, ("kidney", "cyst")),
                            str(root / split / "masks" / f"case{case}.seg.nrrd"))
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "classes (named in the segments of case0.seg.nrrd (3D Slicer)): 0 background" in \
        result.output, result.output
    assert "NRRD" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.window=[150, 600]")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "kidney", "cyst"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * 40 * 48 and metrics["distance_unit"] == "mm"
    sitk.WriteImage(itk(scan), str(tmp_path / "new.mha"))
    result = invoke("segment", run, tmp_path / "new.mha", "--output", tmp_path / "out")
    assert result.exit_code == 0, result.output
    written, scan_itk = sitk.ReadImage(str(tmp_path / "out" / "new.mha")), itk(scan)
    assert written.GetSize() == scan_itk.GetSize() == (48, 40, 2)
    assert written.GetOrigin() == scan_itk.GetOrigin()
    assert written.GetSpacing() == scan_itk.GetSpacing()
    assert written.GetDirection() == pytest.approx(scan_itk.GetDirection())


def test_kits_case_folders_and_lits_numbered_volumes_pair_with_only_data(tmp_path):
    """KiTS: case_00000/imaging.nii.gz beside segmentation.nii.gz (KiTS21's aggregated_*
    labels left out); LiTS: volume-0.nii beside segmentation-0.nii in its training batches."""
    import nibabel as nib

    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks.segment.decode import decode_pairs
    from visionsuite.tasks.segment.index import index_pairs

    rng = np.random.default_rng(0)

    def volumes(number: int) -> tuple:
        labels = np.zeros((32, 24, 2), np.uint8)
        labels[6 + number:18 + number, 4:16] = 1
        labels[8:11, 6:9, 1] = 2
        scan = (labels * 200.0 + rng.normal(0, 20, labels.shape)).astype(np.int16)
        return nib.Nifti1Image(scan, np.eye(4)), nib.Nifti1Image(labels, np.eye(4)), labels

    expected = {}
    for number in range(4):
        case = tmp_path / "kits" / f"case_{number:05d}"
        case.mkdir(parents=True)
        scan, labels, expected[case.name] = volumes(number)
        nib.save(scan, case / "imaging.nii.gz")
        nib.save(labels, case / "segmentation.nii.gz")
        nib.save(labels, case / "aggregated_MAJ_seg.nii.gz")
        batch = tmp_path / "lits" / f"Training Batch {1 + number // 2}"
        batch.mkdir(parents=True, exist_ok=True)
        nib.save(scan, batch / f"volume-{number}.nii")
        nib.save(labels, batch / f"segmentation-{number}.nii")
    index = index_pairs(tmp_path / "kits", 0.25)
    (val,) = index.splits["val"]
    assert len(index.splits["train"]) == 3 and val.mask.name == "segmentation.nii.gz"
    assert [p.name for p in val.left_out] == ["aggregated_MAJ_seg.nii.gz"]
    decoded, _, _ = decode_pairs([val], 3, workers=1)
    assert [int(item.mask.max()) for item in decoded] == [1, 2]
    first_slice = expected[val.image.parent.name][:, :, 0]
    assert np.array_equal(decoded[0].mask, np.flipud(first_slice.T))  # NIfTI's slice, upright
    lits = index_pairs(tmp_path / "lits", 0.25)
    pairs = lits.splits["train"] + lits.splits["val"]
    assert sorted((p.image.name, p.mask.name) for p in pairs)[0] == ("volume-0.nii",
                                                                     "segmentation-0.nii")
    assert len(pairs) == 4
    (tmp_path / "kits" / "case_00002" / "segmentation.nii.gz").unlink()
    (tmp_path / "kits" / "case_00002" / "aggregated_MAJ_seg.nii.gz").unlink()
    with pytest.raises(VisionsuiteError, match="case_00002: expected an image volume and its "
                                               "labels, as case_00000 has"):
        index_pairs(tmp_path / "kits")


def test_acdc_patients_pair_their_labelled_frames_and_leave_their_cines_out(tmp_path):
    """ACDC: patient001/patient001_frame01.nii.gz beside patient001_frame01_gt.nii.gz (and
    frame 12's), the unlabelled cine patient001_4d.nii.gz and Info.cfg in the same folder."""
    import nibabel as nib

    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks.segment.index import index_pairs

    labels = np.zeros((24, 20, 2), np.uint8)
    labels[6:14, 5:12] = 3
    for number in range(1, 4):
        patient = tmp_path / "acdc" / "training" / f"patient{number:03d}"
        patient.mkdir(parents=True)
        for frame in (1, 12):
            stem = f"patient{number:03d}_frame{frame:02d}"
            nib.save(nib.Nifti1Image(labels.astype(np.int16) * 90, np.eye(4)),
                     patient / f"{stem}.nii.gz")
            nib.save(nib.Nifti1Image(labels, np.eye(4)), patient / f"{stem}_gt.nii.gz")
        nib.save(nib.Nifti1Image(np.zeros((24, 20, 2, 5), np.float32), np.eye(4)),
                 patient / f"patient{number:03d}_4d.nii.gz")
        (patient / "Info.cfg").write_text("ED: 1\nES: 12\n")
    index = index_pairs(tmp_path / "acdc")
    pairs = index.splits["train"] + index.splits["val"]
    assert sorted(p.mask.name for p in pairs)[:2] == ["patient001_frame01_gt.nii.gz",
                                                      "patient001_frame12_gt.nii.gz"]
    assert len(pairs) == 6 and not any("_4d" in p.image.name for p in pairs)
    assert "left out, one image and one mask making a pair: the files ending *_4d (3)" in \
        "\n".join(index.folders)
    from visionsuite.tasks.segment.folders import _one_kind_apart

    assert not _one_kind_apart(set(), {(tmp_path, "patient001_frame01")})  # none apart
    (tmp_path / "acdc" / "training" / "patient002" / "patient002_frame12_gt.nii.gz").unlink()
    with pytest.raises(VisionsuiteError, match="expected images/ and masks/ folders"):
        index_pairs(tmp_path / "acdc")  # a missing mask is no kind of image of its own


def two_channel_volumes(rng, size=(48, 40, 4)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A FLAIR-like volume (bright squares A), a T1-like one (squares B near A, on another
    intensity scale) and the lesion where A and B overlap, which no one channel shows."""
    first, second = np.zeros(size, bool), np.zeros(size, bool)
    for k in range(size[2]):
        for _ in range(3):
            x, y = rng.integers(0, size[0] - 14), rng.integers(0, size[1] - 14)
            first[x:x + 14, y:y + 14, k] = True
            x, y = np.clip((x, y) + rng.integers(-7, 8, 2), 0, (size[0] - 14, size[1] - 14))
            second[x:x + 14, y:y + 14, k] = True
    return (np.where(first, 300.0, 60.0) + rng.normal(0, 10, size),
            np.where(second, 2500.0, 900.0) + rng.normal(0, 50, size), first & second)


def save_volumes(volumes: dict[Path, np.ndarray]) -> None:
    import nibabel as nib

    for path, volume in volumes.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = volume.astype(np.uint8 if volume.dtype == bool else np.float32)
        nib.save(nib.Nifti1Image(stored, np.diag([0.9, 0.9, 3.0, 1.0])), path)


def write_two_channel_case(root: Path, case: str, rng) -> np.ndarray:
    """nnU-Net's files of one case: imagesTr/<case>_0000 and _0001, labelsTr/<case>.
    Returns the first channel's squares."""
    flair, t1, lesion = two_channel_volumes(rng)
    save_volumes({root / "imagesTr" / f"{case}_0000.nii.gz": flair,
                  root / "imagesTr" / f"{case}_0001.nii.gz": t1,
                  root / "labelsTr" / f"{case}.nii.gz": lesion})
    return flair > 180


def test_multi_modal_mri_trains_on_every_channel_and_segments_into_a_label_volume(tmp_path):
    """The Medical Segmentation Decathlon's brain tumours and prostate come as a file per
    MRI channel (nnU-Net) or as 4-D NIfTI: the model takes them all, each windowed on its own.
    Here the lesion shows in neither channel alone, so a high Dice needs both."""
    import nibabel as nib

    from visionsuite.core.metadata import read_metadata

    root, rng = tmp_path / "Dataset001_Lesions", np.random.default_rng(0)
    firsts = {f"case_{n:03d}": write_two_channel_case(root, f"case_{n:03d}", rng)
              for n in range(10)}
    (root / "dataset.json").write_text(json.dumps({"channel_names": {"0": "FLAIR", "1": "T1"},
                                                   "labels": {"background": 0, "lesion": 1}}))
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "images of 2 channels, each windowed on its own: FLAIR, T1" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    "--image-size", 32, "--epochs", 15, "--set", "model.levels=2",
                    "--set", "model.filters=8", "--set", "train.tensorboard=false",
                    "--set", "data.crops_per_image=4")
    assert result.exit_code == 0, result.output
    assert "the images have 2 channels (FLAIR, T1): the model takes all 2" in result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert "channels: 2" in (run / "config.yaml").read_text()
    lesion = json.loads((run / "metrics.json").read_text())["per_class"]["lesion"]["dice"]
    labels = {case: np.asarray(nib.load(root / "labelsTr" / f"{case}.nii.gz").dataobj) > 0
              for case in firsts}
    # the best any model of the first channel alone can do: call all of A lesion
    val = [case for case in firsts if f"{case}[0]" in result.output]  # slices named by case
    assert len(val) == 2 and "_0000.nii.gz[" not in result.output  # 20% of the 10 cases
    overlap = sum(labels[case].sum() for case in val)
    one_channel = 2 * overlap / (overlap + sum(firsts[case].sum() for case in val))
    assert one_channel < 0.8 < 0.95 < lesion
    images = root / "imagesTr"
    case = val[0]
    result = invoke("segment", run, images / f"{case}_0000.nii.gz", images / f"{case}_0001.nii.gz",
                    "--output", tmp_path / "out", "--json", "--overlay", "--dicom-seg")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["mask"].endswith(f"{case}.nii.gz") and len(row["channels"]) == 2
    assert f"{case}: not DICOM; no DICOM SEG" in result.stderr and "dicom_seg" not in row
    written = nib.load(row["mask"])
    assert written.shape == (48, 40, 4) and np.allclose(written.affine, np.diag([0.9, 0.9, 3, 1]))
    predicted = np.asarray(written.dataobj)
    assert (predicted == labels[case]).mean() > 0.98
    # The same channels as one 4-D NIfTI volume give the same labels.
    stacked = np.stack([nib.load(images / f"{case}_000{c}.nii.gz").get_fdata() for c in (0, 1)],
                       axis=-1)
    nib.save(nib.Nifti1Image(stacked.astype(np.float32), written.affine), tmp_path / "4d.nii.gz")
    result = invoke("segment", run, tmp_path / "4d.nii.gz", "--output", tmp_path / "out4",
                    "--json")
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.asarray(nib.load(json.loads(result.stdout)[0]["mask"]).dataobj),
                          predicted)
    # One channel alone would be read as both: refused.
    assert_one_line_error(invoke("segment", run, images / f"{case}_0000.nii.gz",
                                 "--output", tmp_path / "out1"),
                          f"case {case} has the channel files of FLAIR; the model takes 2 "
                          "channels (FLAIR, T1)")
    # Evaluated on images of other channels: refused, before the model sees them.
    other = tmp_path / "three_channels"
    save_volumes({other / "imagesTr" / f"x_000{c}.nii.gz": np.zeros((8, 8, 2)) for c in range(3)}
                 | {other / "labelsTr" / "x.nii.gz": np.zeros((8, 8, 2), bool)})
    assert_one_line_error(invoke("evaluate", run, "--data", other),
                          "the images have 3 channels (channel 0, channel 1, channel 2), but the "
                          "model takes 2")
    result = invoke("export", run, "--quantize", "int8", "--output", tmp_path / "tflite")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "tflite" / "exp-int8.json").read_text())
    assert report["tflite"]["dice"] == pytest.approx(report["keras"]["dice"], abs=0.01)
    metadata = read_metadata((tmp_path / "tflite" / "exp-int8.tflite").read_bytes())
    assert metadata["inputs"][0]["color_space"] == "UNKNOWN"  # two MRI channels: no colours


def test_brats_case_folders_train_and_segment_a_case_folder(tmp_path):
    """BraTS as it comes: a folder per case of <case>_flair.nii.gz, <case>_t1.nii.gz, ...
    and <case>_seg.nii.gz (BraTS 2023: <case>-t2f.nii.gz, ..., <case>-seg.nii.gz)."""
    root, rng = tmp_path / "BraTS2021", np.random.default_rng(1)
    for number in range(10):
        case = f"BraTS2021_{number:05d}"
        flair, t1, lesion = two_channel_volumes(rng)
        save_volumes({root / case / f"{case}_{name}.nii.gz": volume for name, volume
                      in (("t1", t1), ("flair", flair), ("seg", lesion))})
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert "images of 2 channels, each windowed on its own: flair, t1" in result.output
    assert "10 pairs in 10 folder(s)" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.regions={tumour: [foreground]}",
                    "--set", "data.surface_tolerance=2")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert json.loads((run / "inference.json").read_text())["image_channels"] == ["flair", "t1"]
    # a region of one class scores as the class; the cases are volumes, measured in mm
    metrics = json.loads((run / "metrics.json").read_text())
    region, lesion = metrics["per_region"]["tumour"], metrics["per_class"]["foreground"]
    assert region["dice"] == pytest.approx(lesion["dice"]) and region["hd95"] == lesion["hd95"]
    assert region["nsd"] == lesion["nsd"] and metrics["surface_tolerance"] == 2.0
    assert metrics["distance_unit"] == "mm"
    result = invoke("evaluate", run)  # the run's config.yaml keeps the regions
    assert result.exit_code == 0, result.output
    assert "per region (case_dice: the mean over the cases; HD95 and ASSD in mm; NSD within 2 " \
        "mm):" in result.output
    result = invoke("segment", run, root / "BraTS2021_00003", "--output", tmp_path / "out",
                    "--json")
    assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["mask"].endswith("BraTS2021_00003.nii.gz")
    assert [Path(path).name for path in row["channels"]] == [
        "BraTS2021_00003_flair.nii.gz", "BraTS2021_00003_t1.nii.gz"]
    assert "BraTS2021_00003_seg.nii.gz: the labels of a case, not an image; left out" \
        in result.stderr
    (root / "BraTS2021_00004" / "BraTS2021_00004_t1.nii.gz").unlink()
    assert_one_line_error(invoke("data", "check", "segment", root),
                          "BraTS2021_00004: expected the files BraTS2021_00004_<channel>.nii.gz "
                          "of flair, t1 and one BraTS2021_00004_seg.nii.gz of labels, as "
                          "BraTS2021_00000 has; found flair, seg")


def test_channel_counts_that_images_do_not_carry_are_one_line_errors(segment_data, tmp_path):
    assert_one_line_error(invoke("train", "segment", "--data", segment_data, *TINY_SEGMENT,
                                 "--set", "data.channels=2"),
                          "data.channels=2: the images of", "are grey or colour, 1 or 3")


def test_large_photos_train_scaled_down_by_max_size_and_masks_come_back_full_size(tmp_path):
    """Dermoscopy-like: photos far larger than the crops are scaled down to data.max_size for
    training and metrics; `segment` predicts at that scale and writes masks at the photo's."""
    root = make_segment_folder(tmp_path / "derm", train=3, val=1, size=(120, 90), roi=True)
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT, "--set", "data.max_size=60")
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 45 * 30  # the 60x45 val image, left half inside the ROI
    assert json.loads((run / "inference.json").read_text())["max_size"] == 60
    image = root / "val" / "images" / "0.png"
    result = invoke("export", run, "--quantize", "float16", "--output", tmp_path)
    assert result.exit_code == 0, result.output
    for model in (run, tmp_path / "exp-float16.tflite"):
        result = invoke("segment", model, image, "--output", tmp_path / "out", "--json")
        assert result.exit_code == 0, result.output
        mask = np.array(Image.open(json.loads(result.stdout)[0]["mask"]))
        assert mask.shape == (90, 120) and set(np.unique(mask)) <= {0, 255}
    assert_one_line_error(invoke("train", "segment", "--data", root, *TINY_SEGMENT,
                                 "--set", "data.max_size=20"),
                          "data.max_size (20) is smaller than data.image_size (32)")


def test_a_run_resumes_in_a_new_process(segment_run, tmp_path):
    """Before, --resume of every segment run failed in a new process ("Could not locate class
    'SegmentationLoss'"): the loss class is made on first use, and loading last.keras came first."""
    from conftest import resume_in_new_process

    run = shutil.copytree(segment_run, tmp_path / "run")
    printed = resume_in_new_process("segment", run, epochs=3)
    # mixed_precision auto: a 4-filter U-Net trains in float32, with AMX, AVX512-BF16 or neither
    assert "precision: float32 compute, as the run was trained" in printed


def test_a_runs_largest_component_choice_is_applied_by_segment_and_evaluate(
        segment_run, segment_data, tmp_path):
    from visionsuite.tasks.segment.components import keep_largest

    metrics = json.loads((segment_run / "metrics.json").read_text())
    (trial,) = metrics["largest_component_trials"]  # binary: the foreground alone is tried
    assert trial["structure"] == "foreground"
    settings = segment_run / "inference.json"
    saved = json.loads(settings.read_text()) if settings.is_file() else {}
    assert ("keep_largest_component" in saved) == trial["kept"]
    chosen = tmp_path / "run"
    shutil.copytree(segment_run, chosen)
    (chosen / "inference.json").write_text(json.dumps(
        {**saved, "keep_largest_component": [["foreground"]]}))
    image = segment_data / "val" / "images" / "1.png"
    masks = []
    for options in (("--all-components",), ()):
        result = invoke("segment", chosen, image, "--output", tmp_path / f"out{len(options)}",
                        "--json", *options)
        assert result.exit_code == 0, result.output
        masks.append(np.array(Image.open(json.loads(result.stdout)[0]["mask"])) // 255)
        assert ("keeping the largest connected component only, as training chose on val: of "
                "foreground" in result.stderr) == (not options)
    plain, kept = masks
    assert np.array_equal(kept, keep_largest(plain[None], [1])[0])
    result = invoke("evaluate", chosen, "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "m.json").read_text())["keep_largest_component"] == [
        ["foreground"]]


@pytest.mark.parametrize("layout", ["coco", "yolo"])
def test_polygon_exports_check_train_and_segment_with_only_data(layout, tmp_path):
    """Roboflow's COCO and YOLO segmentation exports of the same images."""
    from test_segment import make_coco_segment_folder, make_yolo_segment_folder

    make, read, named_in = {
        "coco": (make_coco_segment_folder, "COCO: train: train/_annotations.coco.json (4 "
                 "images), val: valid/_annotations.coco.json (2 images)",
                 "train/_annotations.coco.json"),
        "yolo": (make_yolo_segment_folder, "YOLO: train: 4 images, val: 2 images",
                 "data.yaml")}[layout]
    root = make(tmp_path / layout)
    result = invoke("data", "check", "segment", root)
    assert result.exit_code == 0, result.output
    assert read in result.output
    assert f"classes (named in {named_in}): 0 background" in result.output
    assert "1 organ" in result.output and "2 lesion" in result.output
    result = invoke("train", "segment", "--data", root, "--output", tmp_path / "runs",
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "organ", "lesion"]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] == 2 * 40 * 30 and set(metrics["per_class"]) == {
        "background", "organ", "lesion"}
    images = root / "valid" / ("images" if layout == "yolo" else "")
    result = invoke("segment", run, images, "--output", tmp_path / "out", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(Path(row["image"]).name for row in json.loads(result.stdout)) == [
        "0.jpg", "1.jpg"]  # the images, not the labels
