"""Object-level scores of instance masks (tasks/segment/objects.py): the truth's numbered
objects against the predicted foreground's connected components."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.tasks.segment.mask_classes import IGNORE
from visionsuite.tasks.segment.objects import image_object_scores, object_metrics


def three_cells() -> np.ndarray:
    cells = np.zeros((20, 30), np.int32)
    cells[2:8, 2:8], cells[2:8, 10:16], cells[12:18, 2:8] = 1, 2, 3  # 36 pixels each
    return cells


def test_objects_match_one_to_one_above_half_their_union():
    cells = three_cells()
    predicted = np.zeros(cells.shape, np.uint8)
    predicted[2:8, 2:8] = 1  # cell 1 exactly
    predicted[2:8, 10:14] = 1  # two thirds of cell 2: IoU 24/36
    predicted[12:14, 20:25] = 1  # nothing there: a false positive; cell 3 missed
    score = image_object_scores(predicted, (cells > 0).astype(np.uint8), cells)
    assert (score["truth"], score["predicted"]) == (3, 3)
    assert score["matched_ious"] == pytest.approx([1.0, 2 / 3])
    # matches above 0.5, 0.55, ..., 0.95: both up to 0.65, then cell 1 alone
    assert score["matches_above"] == [2] * 4 + [1] * 6
    metrics = object_metrics([score])
    assert metrics["matched"] == 2
    assert metrics["precision"] == metrics["recall"] == metrics["f1"] == pytest.approx(2 / 3)
    assert metrics["segmentation_quality"] == pytest.approx(5 / 6)
    assert metrics["panoptic_quality"] == pytest.approx(2 / 3 * 5 / 6)
    # TP / (TP + FP + FN): 2 / 4 at four thresholds, 1 / 5 at six
    assert metrics["mean_ap"] == pytest.approx((4 * 0.5 + 6 * 0.2) / 10)


def test_the_iou_of_each_overlapping_pair_is_what_counting_pixels_gives():
    from visionsuite.tasks.segment.objects import matched_ious, predicted_objects

    rng = np.random.default_rng(3)
    for _ in range(5):
        truth, predicted = np.zeros((40, 50), np.int32), np.zeros((40, 50), np.uint8)
        for number in rng.permutation(np.arange(1, 400))[:12]:  # numbers with gaps
            y, x, h, w = *rng.integers(0, 35, 2), *rng.integers(2, 9, 2)
            truth[y:y + h, x:x + w] = number  # later ones cover earlier ones
            y, x, h, w = *rng.integers(0, 35, 2), *rng.integers(2, 9, 2)
            predicted[y:y + h, x:x + w] = 1
        found = predicted_objects(predicted > 0)
        counted = sorted(((truth == t) & (found == f)).sum() / ((truth == t) | (found == f)).sum()
                         for t in np.unique(truth[truth > 0])
                         for f in np.unique(found[found > 0])
                         if ((truth == t) & (found == f)).any())
        ious, truths, founds = matched_ious(truth, found)
        assert sorted(ious) == pytest.approx(counted)
        assert (truths, founds) == (len(np.unique(truth)) - 1, found.max())


def test_touching_cells_predicted_as_one_match_neither():
    cells = np.zeros((10, 20), np.int32)
    cells[2:8, 2:8], cells[2:8, 8:14] = 1, 2  # side by side
    predicted = (cells > 0).astype(np.uint8)  # a perfect Dice, one blob
    metrics = object_metrics([image_object_scores(predicted, predicted, cells)])
    assert (metrics["truth"], metrics["predicted"], metrics["matched"]) == (2, 1, 0)
    assert metrics["f1"] == 0.0 and metrics["segmentation_quality"] is None
    assert metrics["panoptic_quality"] == 0.0 and metrics["mean_ap"] == 0.0


def test_touching_nuclei_of_two_classes_are_two_objects_and_each_class_is_scored():
    from visionsuite.tasks.segment.objects import add_object_scores

    nuclei = np.zeros((10, 20), np.int32)
    nuclei[2:8, 2:8], nuclei[2:8, 8:14] = 1, 2  # side by side, of classes 1 and 2
    classes = np.where(nuclei == 1, 1, np.where(nuclei == 2, 2, 0)).astype(np.uint8)
    predicted = classes.copy()
    predicted[2:8, 8:14] = 1  # the second nucleus right, its class wrong
    metrics = {"per_image": [{}]}
    add_object_scores(metrics, [predicted], [classes], [nuclei], ["bg", "tumour", "immune"])
    objects = metrics["objects"]
    # all foreground: the two predicted as one blob of class 1, matching neither
    assert (objects["truth"], objects["predicted"], objects["matched"]) == (2, 1, 0)
    tumour, immune = objects["per_class"]["tumour"], objects["per_class"]["immune"]
    assert (tumour["truth"], tumour["predicted"], tumour["matched"]) == (1, 1, 0)
    assert (immune["truth"], immune["predicted"], immune["f1"]) == (1, 0, 0.0)
    assert objects["mpq"] == 0.0
    metrics = {"per_image": [{}]}
    add_object_scores(metrics, [classes], [classes], [nuclei], ["bg", "tumour", "immune"])
    assert metrics["objects"]["f1"] == metrics["objects"]["mpq"] == 1.0  # two classes: two
    assert metrics["per_image"] == [{"object_f1": 1.0}]


def test_objects_outside_the_region_of_interest_count_on_neither_side():
    cells = three_cells()
    target = (cells > 0).astype(np.uint8)
    target[:, 9:] = IGNORE  # cell 2 and the false positive lie outside
    predicted = np.zeros(cells.shape, np.uint8)
    predicted[2:8, 2:8], predicted[12:18, 2:8], predicted[12:14, 20:25] = 1, 1, 1
    metrics = object_metrics([image_object_scores(predicted, target, cells)])
    assert (metrics["truth"], metrics["predicted"], metrics["matched"]) == (2, 2, 2)
    assert metrics["f1"] == metrics["panoptic_quality"] == metrics["mean_ap"] == 1.0


def cell_set(root, counts=(("train", 4), ("val", 2)), seed=0):
    """Cellpose-style pairs: 16-bit masks numbering up to 300 cells of 3x3 pixels, apart."""
    rng = np.random.default_rng(seed)
    cells_of = {}
    for split, count in counts:
        for folder in ("images", "masks"):
            (root / split / folder).mkdir(parents=True)
        for index in range(count):
            image, cells = np.full((64, 64), 20, np.uint8), np.zeros((64, 64), np.uint16)
            places = rng.permutation(256)[:rng.integers(20, 40)]
            for number, place in enumerate(places, 290):  # numbers past 8 bits
                row, column = divmod(int(place), 16)
                cells[row * 4:row * 4 + 3, column * 4:column * 4 + 3] = number
            image[cells > 0] = 200
            Image.fromarray(image).save(root / split / "images" / f"{index}.png")
            Image.fromarray(cells).save(root / split / "masks" / f"{index}.png")
            cells_of[split, index] = cells
    return cells_of


def test_instance_masks_keep_their_object_numbers_on_val_and_score_objects(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    cells_of = cell_set(tmp_path)
    for sets in ([], ["data.binary_masks=true"]):  # chosen from the masks, or set
        data = TASK.load_data(load_config("segment", overrides={"data.path": str(tmp_path)},
                                          sets=sets))
        assert data.train.objects == [None] * 4  # training needs no numbers
        for index, numbers in enumerate(data.val.objects):
            assert np.array_equal(numbers, cells_of["val", index])
    perfect = [np.stack([target == 0, target == 1], -1).astype(np.float32)
               for target in data.val.targets]
    metrics = TASK.evaluate(perfect, data.val, data.labels, settings={})
    truth = sum(len(np.unique(cells_of["val", index])) - 1 for index in range(2))
    assert metrics["objects"] | {"mean_ap": 1.0} == {
        "iou_threshold": 0.5, "images": 2, "truth": truth, "predicted": truth,
        "matched": truth, "precision": 1.0, "recall": 1.0, "f1": 1.0,
        "segmentation_quality": 1.0, "panoptic_quality": 1.0, "mean_ap": 1.0}
    assert metrics["objects"]["mean_ap"] == 1.0
    assert [row["object_f1"] for row in metrics["per_image"]] == [1.0, 1.0]
    assert TASK.headline(metrics)["object_f1"] == TASK.headline(metrics)["panoptic_quality"] == 1


def test_scaled_down_images_keep_their_objects_at_their_masks_scale(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    cells_of = cell_set(tmp_path)
    config = load_config("segment", overrides={"data.path": str(tmp_path)},
                         sets=["data.max_size=32", "data.image_size=32"])
    data = TASK.load_data(config, train=False)
    for numbers, target, index in zip(data.val.objects, data.val.targets, range(2)):
        assert numbers.shape == target.shape == (32, 32)
        assert np.array_equal(numbers > 0, target == 1)  # scaled as the mask, nearest
        assert set(np.unique(numbers)) <= set(np.unique(cells_of["val", index]))


def test_class_masks_and_binary_masks_of_no_numbered_objects_score_no_objects(tmp_path):
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    cells_of = cell_set(tmp_path)
    for (split, index), cells in cells_of.items():  # the same cells, all 255
        Image.fromarray(np.where(cells > 0, 255, 0).astype(np.uint8)).save(
            tmp_path / split / "masks" / f"{index}.png")
    for sets in ([], ["data.binary_masks=true"]):
        data = TASK.load_data(load_config("segment", overrides={"data.path": str(tmp_path)},
                                          sets=sets))
        assert data.val.objects == [None, None]
        perfect = [np.stack([target == 0, target == 1], -1).astype(np.float32)
                   for target in data.val.targets]
        metrics = TASK.evaluate(perfect, data.val, data.labels, settings={})
        assert "objects" not in metrics and "object_f1" not in TASK.headline(metrics)


def test_a_cell_set_trained_reports_its_objects_in_evaluate_and_its_json(tmp_path):
    cells_of = cell_set(tmp_path / "cells")
    result = invoke("train", "segment", "--data", tmp_path / "cells", "--output", tmp_path,
                    *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    result = invoke("evaluate", tmp_path / "segment" / "exp", "--json", tmp_path / "m.json")
    assert result.exit_code == 0, result.output
    assert "objects (the masks' numbered objects against the predicted connected " \
           "components, " in result.output and "; matched at IoU > 0.5" in result.output
    objects = json.loads((tmp_path / "m.json").read_text())["objects"]
    assert objects["images"] == 2
    assert objects["truth"] == sum(len(np.unique(cells_of["val", i])) - 1 for i in range(2))
    assert 0 <= objects["matched"] <= min(objects["truth"], objects["predicted"])
    # segment --objects: masks numbering the predicted cells, a TIFF stack's page by page
    stack = [np.asarray(Image.open(tmp_path / "cells" / "val" / "images" / f"{i}.png"))
             for i in range(2)]
    Image.fromarray(stack[0]).save(tmp_path / "stack.tif", save_all=True,
                                   append_images=[Image.fromarray(stack[1])])
    result = invoke("segment", tmp_path / "segment" / "exp", tmp_path / "cells" / "val" /
                    "images" / "0.png", tmp_path / "stack.tif", "--output", tmp_path / "out",
                    "--objects", "--json")
    assert result.exit_code == 0, result.output
    single, stacked = json.loads(result.stdout)
    numbers = np.asarray(Image.open(single["mask"]))
    assert numbers.dtype == np.uint16 and set(np.unique(numbers)) == set(
        range(single["objects"] + 1))
    assert single["areas"]["foreground"]["pixels"] == (numbers > 0).sum()
    with Image.open(stacked["mask"]) as pages:
        counts = []
        for page in range(2):
            pages.seek(page)
            counts.append(int(np.asarray(pages).max()))
            assert np.asarray(pages).dtype == np.uint16
    assert counts[0] == single["objects"] and stacked["objects"] == sum(counts)
    # touching objects split as asked: the cells are apart, so there is nothing to split
    result = invoke("segment", tmp_path / "segment" / "exp", tmp_path / "cells" / "val" /
                    "images" / "0.png", "--output", tmp_path / "split", "--objects",
                    "--split-touching", "1", "--overlay", "--json")
    assert result.exit_code == 0, result.output
    (split,) = json.loads(result.stdout)
    assert split["objects"] == single["objects"]
    numbered = np.asarray(Image.open(split["mask"]))
    assert (numbered > 0).sum() == (numbers > 0).sum()
    # the overlay tints each object its own colour
    tinted = np.asarray(Image.open(split["overlay"]))
    medians = {tuple(np.median(tinted[numbered == number], axis=0))
               for number in range(1, split["objects"] + 1)}
    assert len(medians) == split["objects"] > 1
    # a volume's objects are not numbered slice by slice: its class indices are written
    import nibabel as nib

    nib.save(nib.Nifti1Image(np.stack(stack, axis=-1).astype(np.int16), np.eye(4)),
             tmp_path / "volume.nii.gz")
    result = invoke("segment", tmp_path / "segment" / "exp", tmp_path / "volume.nii.gz",
                    "--output", tmp_path / "out", "--objects", "--json")
    assert result.exit_code == 0, result.output
    assert "volume.nii.gz: a volume; --objects numbers the objects of 2-D images and stacks, " \
           "so its class indices are written" in result.stderr
    (volume,) = json.loads(result.stdout)
    assert "objects" not in volume and nib.load(volume["mask"]).get_fdata().max() == 1


def test_objects_are_numbered_for_2_class_models_alone():
    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks.segment.commands import _check_objects

    _check_objects(True, 2, None)
    _check_objects(False, 4, None)
    _check_objects(True, 2, 0.0)
    with pytest.raises(VisionsuiteError, match="--objects: numbers the foreground's objects, "
                                               "for 2-class models; this one has 4 classes"):
        _check_objects(True, 4, None)
    with pytest.raises(VisionsuiteError, match="--split-touching: splits the objects that "
                                               "--objects numbers; give --objects too"):
        _check_objects(False, 2, 1.0)
    with pytest.raises(VisionsuiteError, match="--split-touching -1: a tolerance in pixels"):
        _check_objects(True, 2, -1.0)


def test_nuclei_numbered_beside_their_classes_are_scored_as_objects_of_their_classes(tmp_path):
    """CoNSeP's labels: type_map (the classes, trained on) and inst_map (the nuclei) in one
    .mat; Lizard's: inst_map with each nucleus' class. The val nuclei are scored as objects,
    all together (HoVer-Net's bPQ) and class by class (mPQ)."""
    import scipy.io

    from test_arrays import make_hovernet_set, make_lizard
    from visionsuite.config import load_config
    from visionsuite.tasks.segment import TASK

    for root in (make_hovernet_set(tmp_path / "CoNSeP", types=True),
                 make_lizard(tmp_path / "Lizard")):
        data = TASK.load_data(load_config("segment", overrides={"data.path": str(root)}))
        assert len(data.labels) > 2 and data.train.objects == [None] * len(data.train)
        for numbers, path in zip(data.val.objects, data.val.paths):
            labels = next(root.rglob(f"{path.stem}.mat"))
            assert np.array_equal(numbers, scipy.io.loadmat(labels)["inst_map"])
        perfect = [np.eye(len(data.labels), dtype=np.float32)[target]
                   for target in data.val.targets]
        metrics = TASK.evaluate(perfect, data.val, data.labels, settings={})
        objects = metrics["objects"]
        assert objects["truth"] == sum(len(np.unique(n)) - 1 for n in data.val.objects)
        assert sum(scores["truth"] for scores in objects["per_class"].values()) == \
            objects["truth"]
        assert TASK.headline(metrics)["mpq"] == objects["mpq"] > 0
    cpm = make_hovernet_set(tmp_path / "CPM-17", types=False)  # inst_map alone: its mask
    data = TASK.load_data(load_config("segment", overrides={"data.path": str(cpm)}))
    assert data.labels == ["background", "foreground"]
    assert np.array_equal(data.val.objects[0], scipy.io.loadmat(
        cpm / "Test" / "Labels" / "test_1.mat")["inst_map"])


def discs(shape, circles) -> np.ndarray:
    """Objects numbered 1..N: discs (row, column, radius), a later one not over an earlier."""
    rows, columns = np.indices(shape)
    numbers = np.zeros(shape, np.int32)
    for number, (row, column, radius) in enumerate(circles, start=1):
        numbers[((rows - row) ** 2 + (columns - column) ** 2 <= radius ** 2)
                & (numbers == 0)] = number
    return numbers


# two pairs of touching discs (one pair of unequal sizes), and a disc on its own
TOUCHING = ((20, 20, 9), (20, 37, 9), (55, 25, 12), (55, 46, 8), (20, 70, 7))


def test_touching_round_objects_are_split_along_the_valley_between_them():
    from visionsuite.tasks.segment.objects import predicted_objects, split_touching

    truth = discs((80, 90), TOUCHING)
    assert predicted_objects(truth > 0).max() == 3  # the pairs are one component each
    for tolerance in (0.5, 1.0, 2.0):
        found = split_touching(truth > 0, tolerance)
        assert found.max() == 5 and ((found > 0) == (truth > 0)).all()
        for number in range(1, 6):  # each disc is one object, to a pixel or so
            values, counts = np.unique(found[truth == number], return_counts=True)
            assert counts.max() >= (truth == number).sum() - 3
        assert len(np.unique(found[truth > 0])) == 5
    # split like predicted_objects numbers: 1..N, all foreground (the whole image too)
    assert (split_touching(np.ones((6, 9), bool), 1.0) == 1).all()
    assert (split_touching(np.zeros((6, 9), bool), 1.0) == 0).all()


def test_objects_without_two_distinct_peaks_are_not_split():
    from visionsuite.tasks.segment.objects import predicted_objects, split_touching

    shapes = np.zeros((60, 80), bool)
    shapes[5:15, 5:75] = True  # a long bar: its ridge is one plateau
    shapes[25:26, 5:75] = True  # a line a pixel wide
    peanut = discs((60, 80), ((45, 20, 8), (45, 28, 8))) > 0  # a waist 1.06 px shallower
    shapes |= peanut
    assert split_touching(shapes, 2.0).max() == 3
    assert split_touching(shapes, 0.5).max() == 4  # the peanut's two halves at 0.5 px
    # each class's objects are split on their own
    classes = np.array([0, 1, 1, 1, 2, 2], np.uint8)[discs((80, 90), TOUCHING)]
    assert predicted_objects(classes).max() == 4  # the unequal pair's discs: two classes
    assert predicted_objects(classes, 1.0).max() == 5


def test_training_chooses_to_split_touching_objects_where_panoptic_quality_rises(monkeypatch):
    from visionsuite.tasks.segment import objects
    from visionsuite.tasks.segment.objects import add_object_scores, choose_split

    truth = discs((80, 90), TOUCHING)
    predicted = (truth > 0).astype(np.uint8)  # a perfect Dice, the pairs each one blob
    tolerance, trials, chosen = choose_split([(predicted, predicted, truth)])
    assert tolerance == 0.5 and [trial["split_touching"] for trial in trials] == \
        ["off", 0.5, 1.0, 2.0]
    # not split: the lone disc, the larger of the unequal pair (IoU 0.69) and, narrowly, the
    # first of the equal pair (the second lost a pixel column to it) match
    assert trials[0]["matched"] == 3 and trials[1]["matched"] == 5
    assert trials[1]["panoptic_quality"] > 0.9 > trials[0]["panoptic_quality"]
    assert len(chosen[0]["matched_ious"]) == 5  # the chosen trial's own image scores
    metrics, scorings = {"per_image": [{"image": "a.png"}]}, []
    score = objects.image_object_scores
    monkeypatch.setattr(objects, "image_object_scores",
                        lambda *args, **kwargs: scorings.append(1) or score(*args, **kwargs))
    add_object_scores(metrics, [predicted], [predicted], [truth], ["background", "cell"],
                      "auto")
    assert metrics["split_touching"] == 0.5 and metrics["objects"]["matched"] == 5
    assert metrics["per_image"][0]["object_f1"] == 1.0
    # the chosen trial's scores are kept, not computed again: those of the tolerance given
    assert len(scorings) == len(trials)
    given = {"per_image": [{"image": "a.png"}]}
    add_object_scores(given, [predicted], [predicted], [truth], ["background", "cell"], 0.5)
    assert metrics["objects"] == given["objects"] and metrics["per_image"] == given["per_image"]
    # cells apart: splitting gains nothing, and nothing is split
    apart = discs((80, 90), ((20, 20, 9), (60, 60, 9)))
    tolerance, trials, _ = choose_split([((apart > 0).astype(np.uint8), apart > 0, apart)])
    assert tolerance is None and len({trial["panoptic_quality"] for trial in trials}) == 1
    metrics = {}
    add_object_scores(metrics, [predicted], [predicted], [truth], ["background", "cell"],
                      False)
    assert "split_touching" not in metrics and "split_touching_trials" not in metrics
    assert metrics["objects"]["matched"] == 3


def test_split_touching_is_auto_false_or_a_tolerance():
    from visionsuite.config import load_config
    from visionsuite.errors import VisionsuiteError
    from visionsuite.tasks.segment import TASK

    for value, expected in (("auto", "auto"), ("false", False), ("1.5", 1.5), ("1", 1.0),
                            ("0", 0.0)):
        config = load_config("segment", sets=[f"model.split_touching={value}"])
        TASK.check_settings(config)
        assert config.model.split_touching == expected
    for value in ("true", "-1", "watershed"):
        config = load_config("segment", sets=[f"model.split_touching={value}"])
        with pytest.raises(VisionsuiteError, match=r"model.split_touching=.*: expected auto, "
                                                   r"false or a tolerance in pixels \(e.g. 1; "
                                                   r"0: not split\)"):
            TASK.check_settings(config)


def test_touching_cells_split_as_the_run_chose_on_val_unless_told(tmp_path, capsys):
    """segment --objects splits touching cells at the tolerance training chose on val, and
    --split-touching sets it (0: not split); evaluate applies the run's."""
    from visionsuite.tasks.segment.commands import _touching_split

    assert _touching_split(None, {"split_touching": 1.0}) == 1.0
    assert "splitting touching objects, as training chose on val: at 1 px" in \
        capsys.readouterr().err
    assert _touching_split(0.0, {"split_touching": 1.0}) is None
    assert _touching_split(2.0, {}) == 2.0 and _touching_split(None, {}) is None


def test_evaluate_splits_touching_objects_as_chosen_on_val_and_saved_in_the_run():
    from visionsuite.config import load_config
    from visionsuite.tasks.base import TaskData
    from visionsuite.tasks.segment import TASK
    from visionsuite.tasks.segment.data import SegmentSplit

    truth = discs((80, 90), TOUCHING)
    foreground = (truth > 0).astype(np.float32)
    outputs = [np.stack([1 - foreground, foreground], axis=-1)]  # the pairs each one blob
    split = SegmentSplit([np.zeros((80, 90, 3), np.uint8)], [(truth > 0).astype(np.uint8)],
                         [Path("a.png")], objects=[truth], split_touching="auto")
    labels = ["background", "cell"]
    chosen = TASK.evaluate(outputs, split, labels)  # training's: chosen on val
    assert chosen["split_touching"] == 0.5 and chosen["objects"]["matched"] == 5
    assert [row["split_touching"] for row in chosen["split_touching_trials"]] == \
        ["off", 0.5, 1.0, 2.0]
    tables = TASK.detail_tables(chosen)
    assert any("touching ones split at 0.5 px" in title for title, _ in tables)
    (trials,) = [rows for title, rows in tables
                 if title.startswith("touching objects split, chosen on val")]
    assert [row["split_touching"] for row in trials] == ["off", "0.5 px", "1 px", "2 px"]
    settings = TASK.inference_settings(chosen, TaskData(labels, split),
                                       load_config("segment"))
    assert settings["split_touching"] == 0.5
    # a trained run's evaluate applies what it saved, and trials nothing
    applied = TASK.evaluate(outputs, split, labels, settings)
    assert applied["objects"]["matched"] == 5 and "split_touching_trials" not in applied
    plain = TASK.evaluate(outputs, split, labels, {})
    assert plain["objects"]["matched"] == 3 and "split_touching" not in plain
    assert any("connected components, not split;" in title
               for title, _ in TASK.detail_tables(plain))
    split.split_touching = False  # model.split_touching=false: never split, nothing tried
    assert "split_touching_trials" not in TASK.evaluate(outputs, split, labels)


def test_each_object_has_its_own_colour_and_neighbours_differ():
    from visionsuite.core.plots import object_colours

    colours = object_colours(500).astype(int)
    assert colours.shape == (501, 3) and (colours[0] == 0).all()
    assert len(np.unique(colours[1:], axis=0)) == 500
    # objects numbered one after the other, often neighbours, are far apart in colour
    assert np.abs(np.diff(colours[1:], axis=0)).sum(axis=1).min() > 60


def test_the_distance_map_is_exact_and_the_same_from_run_to_run():
    """OpenCV's exact distance transform is a few float32 steps off, differently from run to
    run, which moved the watershed's ties: the map split_touching uses is scipy's, exactly."""
    from scipy import ndimage

    from visionsuite.tasks.segment.objects import _distance_map

    rng = np.random.default_rng(0)
    for side in (17, 90, 300):
        mask = rng.random((side, side + 7)) < 0.93
        assert np.array_equal(_distance_map(mask),
                              ndimage.distance_transform_edt(mask).astype(np.float32))
    far = np.ones((800, 800), bool)  # distances past 360 px: scipy's own
    far[0, 0] = False
    assert _distance_map(far)[-1, -1] == np.float32(np.hypot(799, 799))
