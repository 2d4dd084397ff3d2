"""The face task's parts on tiny inputs: metrics against hand-counted cases, the losses, the
embedder, finding faces, the identity index and the gallery file."""

import json
import math
from pathlib import Path

import numpy as np
import pytest

from visionsuite.config import load_config
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.face import metrics as fm


def test_auc_far_and_eer_on_hand_counted_scores():
    positives = np.array([0.9, 0.8, 0.7, 0.4])
    negatives = np.array([0.6, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0, -0.1, -0.2, -0.3])
    # 4 x 10 pairs, of which only 0.4 < 0.6 and 0.4 < 0.5 are wrongly ordered.
    assert fm.roc_auc(positives, negatives) == pytest.approx(38 / 40)
    assert fm.roc_auc(np.array([0.5]), np.array([0.5])) == 0.5  # a tie counts half
    # FAR 0.1 allows 1 of 10 negatives above the threshold: just above 0.5.
    cut = fm.threshold_at_far(negatives, 0.1)
    assert 0.5 < cut < 0.6 and (negatives >= cut).sum() == 1
    assert (negatives >= fm.threshold_at_far(negatives, 0.01)).sum() == 0
    assert fm.equal_error_rate(positives, negatives) == pytest.approx(0.2, abs=0.06)
    best = fm.best_threshold(positives, negatives)
    # Accepting all 4 same and 2/10 different (balanced accuracy 0.9) beats 3/4 and 0/10
    # (0.875): the cut lies between 0.3 and 0.4.
    assert 0.3 < best < 0.4


def test_face_metrics_on_separable_embeddings():
    rng = np.random.default_rng(0)
    centres = fm.unit(rng.normal(size=(5, 16)))
    identities = np.repeat(np.arange(5), 4)
    embeddings = centres[identities] + rng.normal(0, 0.05, (20, 16))
    metrics = fm.face_metrics(embeddings, identities)
    assert metrics["same_pairs"] == 5 * 6 and metrics["different_pairs"] == 190 - 30
    assert metrics["roc_auc"] == 1.0 and metrics["tar_at_far_0.01"] == 1.0
    assert metrics["rank1"] == 1.0 and metrics["rank1_probes"] == 20
    assert metrics["accuracy"] == 1.0 and metrics["threshold_source"] == "best on this data"
    # With a given threshold that accepts everything, only the same pairs are right.
    given = fm.face_metrics(embeddings, identities, threshold=-1.0)
    assert given["accuracy"] == pytest.approx(30 / 190) and given["far_at_threshold"] == 1.0


def test_pair_scores_in_row_blocks_are_every_pair_and_a_sample_beyond_the_limit(monkeypatch):
    """Before, the whole N x N similarity matrix was held: 8000 faces took 2.6 GB after every
    epoch. Now rows go in blocks, and past the limit different-person pairs are sampled."""
    rng = np.random.default_rng(0)
    identities = np.repeat(np.arange(30), 5)
    vectors = fm.unit(rng.normal(size=(30, 8))[identities] + rng.normal(0, 0.8, (150, 8)))
    similarity = vectors @ vectors.T
    upper = np.triu_indices(150, k=1)
    same = (identities[:, None] == identities[None, :])[upper]
    monkeypatch.setattr(fm, "ROW_BLOCK", 16)  # blocks that do not divide 150
    positives = fm.same_person_scores(vectors, identities)
    negatives, total = fm.different_person_scores(vectors, identities)
    assert sorted(positives) == pytest.approx(sorted(similarity[upper][same]))
    assert sorted(negatives) == pytest.approx(sorted(similarity[upper][~same]))
    assert total == len(negatives) == 150 * 149 // 2 - 30 * 10
    sample, total = fm.different_person_scores(vectors, identities, limit=4000, seed=1)
    assert len(sample) == 4000 and total == 150 * 149 // 2 - 30 * 10
    ordered = np.sort(negatives)  # every sampled score is one of the pairs' (to rounding)
    at = np.clip(np.searchsorted(ordered, sample), 1, len(ordered) - 1)
    assert np.minimum(abs(sample - ordered[at]), abs(sample - ordered[at - 1])).max() < 1e-12
    assert np.mean(sample) == pytest.approx(np.mean(negatives), abs=0.02)
    # face_metrics says when it sampled, and keeps accuracy a rate over all pairs.
    everything = fm.face_metrics(vectors, identities, threshold=0.5)
    monkeypatch.setattr(fm, "MAX_DIFFERENT_PAIRS", 4000)
    sampled = fm.face_metrics(vectors, identities, threshold=0.5)
    assert sampled["different_pairs"] == everything["different_pairs"] == total
    assert sampled["different_pairs_sampled"] == 4000
    assert "different_pairs_sampled" not in everything
    for key in ("roc_auc", "accuracy", "far_at_threshold"):
        assert sampled[key] == pytest.approx(everything[key], abs=0.02), key
    # The FAR 1e-2 cut rests on 40 sampled pairs here (on 20000 at the real limit).
    assert sampled["tar_at_far_0.01"] == pytest.approx(everything["tar_at_far_0.01"], abs=0.08)
    assert sampled["rank1"] == everything["rank1"]


def test_hardest_identities_name_the_people_verification_fails():
    rng = np.random.default_rng(0)
    centres = fm.unit(rng.normal(size=(4, 16)))
    identities = np.repeat(np.arange(4), 4)
    embeddings = centres[identities] + rng.normal(0, 0.05, (16, 16))
    # Person 2 was photographed twice over: two of the photos look like person 3.
    embeddings[8:10] = centres[3] + rng.normal(0, 0.05, (2, 16))
    names = ["ann", "bob", "cy", "dee"]
    rows = fm.hardest_identities(fm.unit(embeddings), identities, 0.5, names)
    # cy's 2 x 2 pairs across the two looks score below the cut; every other pair passes.
    assert (rows[0]["identity"], rows[0]["same_pairs"], rows[0]["missed_pairs"]) == ("cy", 6, 4)
    assert rows[0]["closest_other"] == "dee" and rows[0]["closest_other_similarity"] > 0.9
    assert [row["missed_pairs"] for row in rows[1:]] == [0, 0, 0]
    assert len(fm.hardest_identities(fm.unit(embeddings), identities, 0.5, shown=2)) == 2
    # face_metrics cuts at its FAR 1e-2 threshold, and names the people.
    metrics = fm.face_metrics(embeddings, identities, names=names)
    assert metrics["hardest_identities"][0]["identity"] == "cy"


def test_rank1_leaves_single_image_identities_out_as_probes():
    embeddings = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.95, 0.05]], np.float64)
    identities = np.array([0, 0, 1, 2])  # identity 2 has one image: a distractor only
    accuracy, probes = fm.rank1(embeddings, identities)
    # Probe 0's nearest is 3 (identity 2): wrong; probe 1's nearest is 3 too: wrong.
    assert probes == 2 and accuracy == 0.0


def tiny_face_config(**sets):
    config = load_config("face", sets=[f"{k}={v}" for k, v in {
        "data.image_size": 32, "model.width": 0.25, "model.depth": 0.2, **sets}.items()])
    return config


@pytest.mark.parametrize("loss", ["arcface", "cosface", "triplet"])
def test_losses_fall_when_the_embedding_moves_towards_its_identity(loss):
    import keras

    from visionsuite.tasks.face.model import make_loss

    config = tiny_face_config(**{"train.loss": loss})
    loss_fn = make_loss(config)
    labels = np.array([0, 0, 1, 1])
    if loss == "triplet":
        good = np.array([[1, 0], [0.99, 0.14], [0, 1], [0.14, 0.99]], np.float32)
        bad = np.array([[1, 0], [0, 1], [0.99, 0.14], [0.14, 0.99]], np.float32)
    else:
        good = np.array([[0.9, -0.1], [0.8, 0.0], [-0.1, 0.9], [0.0, 0.8]], np.float32)
        bad = good[:, ::-1].copy()
    good_loss = float(keras.ops.convert_to_numpy(loss_fn(labels, good)))
    bad_loss = float(keras.ops.convert_to_numpy(loss_fn(labels, bad)))
    assert math.isfinite(good_loss) and good_loss < bad_loss


def test_arcface_adds_its_margin_to_the_angle():
    import keras

    from visionsuite.tasks.face.model import MarginSoftmaxLoss

    cosine = math.cos(0.6)
    loss = MarginSoftmaxLoss("arcface", margin=0.5, scale=10.0)
    value = float(keras.ops.convert_to_numpy(loss(np.array([0]), np.array([[cosine, 0.0]]))))
    target = 10 * math.cos(1.1)  # the true identity's logit is s * cos(theta + m)
    expected = -math.log(math.exp(target) / (math.exp(target) + math.exp(0.0)))
    assert value == pytest.approx(expected, rel=1e-4)


def test_the_saved_embedder_drops_the_identity_logits_and_outputs_unit_vectors():
    from visionsuite.tasks.face.model import build_training_model, embedder_of

    config = tiny_face_config()
    model = build_training_model(config, identities=7)
    assert model.output_shape == (None, 7)
    embedder = embedder_of(model)
    assert embedder.output_shape == (None, 128)
    vectors = embedder.predict(np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)),
                               verbose=0)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    triplet = build_training_model(tiny_face_config(**{"train.loss": "triplet"}), 7)
    assert embedder_of(triplet) is triplet


def test_an_unknown_loss_is_a_clear_error():
    from visionsuite.tasks.face.model import make_loss

    with pytest.raises(VisionsuiteError, match="arcface, cosface, triplet"):
        make_loss(tiny_face_config(**{"train.loss": "ce"}))


def group_photo(path: Path, scales=(1.0, 0.75, 0.55)) -> Path:
    """A grey photo of Grace Hopper's portrait (public domain, shipped by matplotlib) side by
    side at each of `scales`: one real face per copy, which OpenCV's cascade finds."""
    import cv2
    from matplotlib import cbook

    portrait = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False),
                          cv2.IMREAD_GRAYSCALE)
    copies = [cv2.resize(portrait, None, fx=0.9 * scale, fy=0.9 * scale) for scale in scales]
    canvas = np.full((max(c.shape[0] for c in copies),
                      sum(c.shape[1] + 20 for c in copies)), 100, np.uint8)
    left = 0
    for copy in copies:
        canvas[:copy.shape[0], left:left + copy.shape[1]] = copy
        left += copy.shape[1] + 20
    cv2.imwrite(str(path), canvas)
    return path


def test_every_face_of_a_group_photo_is_found_largest_first(tmp_path):
    import cv2

    from visionsuite.core.images import read_image
    from visionsuite.tasks.face.faces import faces_in, find_face, prepare_faces

    path = group_photo(tmp_path / "group.png", scales=(0.55, 1.0, 0.75))
    boxes, crops = faces_in(read_image(path), 32)
    assert crops.shape == (3, 32, 32, 3) and crops.dtype == np.uint8
    assert [w for _, _, w, _ in boxes] == sorted((w for _, _, w, _ in boxes), reverse=True)
    lefts = sorted(x for x, _, _, _ in boxes)
    assert [x for x, _, _, _ in boxes] == [lefts[1], lefts[2], lefts[0]]  # 1.0, 0.75, 0.55
    assert find_face(cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)) == boxes[0]
    faces = prepare_faces([path], 32, 3, "true")  # one face a photo: its largest, and a note
    assert faces.kept == [0] and faces.crowded == [(0, 3)]
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((240, 320), 90, np.uint8))
    boxes, crops = faces_in(read_image(blank), 32)
    assert boxes == [] and crops.shape[0] == 0


def test_face_modes_crop_keep_or_report(tmp_path):
    from PIL import Image

    from visionsuite.tasks.face.faces import prepare_faces

    blank = tmp_path / "blank.png"
    Image.new("L", (200, 160), 128).save(blank)
    crops = prepare_faces([blank, blank], 32, 1, "false")
    assert crops.images.shape == (2, 32, 32, 1) and crops.kept == [0, 1]
    detected = prepare_faces([blank], 32, 1, "true")
    assert detected.kept == [] and "blank.png: no face found" in detected.skipped[0]
    with pytest.raises(VisionsuiteError, match="face_detect"):
        prepare_faces([blank], 32, 1, "maybe")


def test_images_of_the_trained_crops_size_are_used_whole_in_auto_mode(tmp_path):
    from PIL import Image

    from visionsuite.tasks.face.faces import prepare_faces

    crop, photo = tmp_path / "crop.png", tmp_path / "photo.png"
    Image.new("L", (92, 112), 128).save(crop)  # no face the cascade finds, in either
    Image.new("L", (200, 160), 128).save(photo)
    faces = prepare_faces([crop, photo], 32, 1, "auto", crop_shape=(112, 92))
    assert faces.kept == [0] and faces.mode == "detected faces"
    assert faces.skipped == [f"{photo}: no face found"]
    assert (faces.images[0] == 128).all()  # the whole image, resized
    alone = prepare_faces([crop], 32, 1, "auto", crop_shape=(112, 92))
    assert alone.kept == [0] and alone.mode == "whole images"
    assert alone.typical_shape == (112, 92)
    # An explicit choice wins: --detect searches every image for a face.
    assert prepare_faces([crop], 32, 1, "true", crop_shape=(112, 92)).kept == []
    assert prepare_faces([crop], 32, 1, "auto").kept == []


def test_the_crop_rotates_the_eyes_level():
    import cv2

    from visionsuite.tasks.face.faces import crop_face

    image = np.zeros((100, 100, 1), np.uint8)
    cv2.line(image, (30, 40), (70, 60), 255, 3)  # the line through two tilted "eyes"
    crop = crop_face(image, (30, 30, 40, 40), ((30, 40), (70, 60)), 52)[..., 0]
    rows = np.nonzero(crop > 128)[0]
    assert rows.max() - rows.min() <= 6  # level after the turn


def test_a_framed_crop_puts_the_face_where_the_framing_says():
    from visionsuite.tasks.face.faces import SQUARE, Framing, crop_face

    ys, xs = np.mgrid[0:200, 0:300]
    image = np.stack([xs % 256, ys, np.zeros_like(xs)], -1).astype(np.uint8)  # x, y codes
    box = (100, 50, 60, 60)  # centre (130, 80)
    square = crop_face(image, box, None, 78)  # 78 px for the 78 px square (60 x 1.3)
    assert tuple(square[39, 39, :2]) == (130, 80)  # the box centre in the middle
    assert square[39, 0, 0] == 91 and square[0, 39, 1] == 41  # 39 px left and up of it
    framing = Framing(centre_x=0.5, centre_y=0.6, width=0.75, aspect=1.5)
    tall = crop_face(image, box, None, 40, framing)  # 80 px wide, 120 px high, squeezed
    assert abs(int(tall[24, 20, 0]) - 130) <= 1 and abs(int(tall[24, 20, 1]) - 80) <= 2
    assert abs(int(tall[24, 0, 0]) - 90) <= 2 and abs(int(tall[0, 20, 1]) - 8) <= 2
    assert Framing.from_json(framing.to_json()) == framing and Framing.from_json(None) is None
    assert SQUARE == Framing(0.5, 0.5, 1 / 1.3, 1.0)


def _portrait_crop(box=(100, 60, 312, 360)):
    """Grace Hopper's portrait cut to a crop her face fills, as face datasets crop faces."""
    import cv2
    from matplotlib import cbook

    x, y, w, h = box
    portrait = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False),
                          cv2.IMREAD_GRAYSCALE)
    return portrait[y:y + h, x:x + w]


def test_a_set_of_crops_gives_its_framing_and_a_face_found_in_a_photo_is_cut_alike(tmp_path):
    """A model trained on crops used whole is shown a face found in a photo framed as its
    crops frame theirs: cut around her face's box with the crops' framing, the crop pasted
    into a photo is the crop again. (The cascade's own box for a face varies by some 15%
    with what surrounds it; benchmarks/face.py measures what the framing gains on ORL.)"""
    import cv2

    from visionsuite.tasks.face.faces import crop_face, find_face, prepare_faces

    crop = _portrait_crop()
    paths = []
    for number in range(5):
        paths.append(tmp_path / f"crop{number}.png")
        cv2.imwrite(str(paths[-1]), crop)
    faces = prepare_faces(paths, 32, 1, "auto")
    assert faces.mode == "whole images" and faces.framing is not None
    x, y, w, h = find_face(crop)
    framing = faces.framing
    assert framing.centre_x == pytest.approx((x + w / 2) / 312)
    assert framing.centre_y == pytest.approx((y + h / 2) / 360)
    assert framing.width == pytest.approx(w / 312) and framing.aspect == pytest.approx(360 / 312)
    assert prepare_faces(paths[:4], 32, 1, "auto").framing is None  # too few to measure
    photo = np.full((700, 900), 100, np.uint8)
    photo[200:560, 400:712] = crop
    at = (x + 400, y + 200, w, h)  # her face's box in the photo
    whole = faces.images[0, ..., 0].astype(int)  # the crop, as training saw it
    framed = crop_face(photo[..., None], at, None, 32, framing)[..., 0].astype(int)
    square = crop_face(photo[..., None], at, None, 32)[..., 0].astype(int)
    assert np.abs(framed - whole).mean() < 2  # the crop again
    assert np.abs(square - whole).mean() > 10


def _people(folder: Path, people: str) -> None:
    """Two small grey photos in a folder of each of `people` (one letter each) in `folder`."""
    from PIL import Image

    for person in people:
        (folder / person).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), 40 * i).save(folder / person / f"{i}.png")


def test_people_inside_an_archives_wrapper_folders_and_in_video_folders_are_found(tmp_path):
    """LFW's deep-funnelled archive unpacks to lfw-deepfunneled/lfw-deepfunneled/<person>/
    (Kaggle's beside LFW's lists as CSVs), CASIA-WebFace's to CASIA-WebFace/<id>/, YouTube Faces' to aligned_images_DB/<person>/
    <video>/: --data may name the outer folder; a person's videos are one person."""
    from visionsuite.tasks.face.data import index_identities

    inner = tmp_path / "lfw" / "lfw-deepfunneled" / "lfw-deepfunneled"
    _people(inner, "abcde")
    (tmp_path / "lfw" / "README.txt").write_text("Labeled Faces in the Wild")
    (tmp_path / "lfw" / "pairs.csv").write_text("name,imagenum1,imagenum2,\na,1,2,\n")
    index = index_identities(tmp_path / "lfw", val_fraction=0.4)  # as Kaggle's copy comes
    assert index.root == inner and len(index.names["train"]) == 3
    assert sorted(index.names["train"] + index.names["val"]) == list("abcde")
    for person in "abc":
        _people(tmp_path / "ytf" / "aligned_images_DB" / person, "01")  # two videos each
    index = index_identities(tmp_path / "ytf", everyone_trains=True)
    assert index.names["train"] == list("abc") and len(index.splits["train"]) == 12


def test_held_out_identities_come_from_a_test_folder_or_by_fraction(tmp_path):
    from visionsuite.tasks.face.data import index_identities

    _people(tmp_path / "train", "abcd")
    _people(tmp_path / "test", "xy")
    index = index_identities(tmp_path)
    assert index.names == {"val": ["x", "y"], "train": ["a", "b", "c", "d"]}
    # No held-out folder: whole identities are held out, never some of a person's images.
    by_fraction = index_identities(tmp_path / "train", val_fraction=0.25)
    assert by_fraction.held_out_by_fraction
    held, trained = by_fraction.names["val"], by_fraction.names["train"]
    assert len(held) == 2 and sorted(held + trained) == ["a", "b", "c", "d"]
    assert {path.parent.name for path, _ in by_fraction.splits["val"]} == set(held)
    # data.val_pairs picks the epoch: no one is held out.
    everyone = index_identities(tmp_path / "train", val_fraction=0.25, everyone_trains=True)
    assert everyone.names == {"train": ["a", "b", "c", "d"], "val": []}
    assert len(everyone.splits["train"]) == 8 and not everyone.splits["val"]
    # Kaggle's names: Training/ and Testing/.
    (tmp_path / "train").rename(tmp_path / "Training")
    (tmp_path / "test").rename(tmp_path / "Testing")
    assert index_identities(tmp_path).names == {"val": ["x", "y"], "train": ["a", "b", "c", "d"]}


def test_k_folds_hold_out_whole_people_each_once(tmp_path):
    """data.folds / data.fold for faces: each fold holds out whole people; the folds of one
    seed are disjoint and hold everyone once; a set with a test/ folder, too few people, and
    folds beside data.val_pairs are refused."""
    from visionsuite.core.splits import Fold
    from visionsuite.tasks import get_task
    from visionsuite.tasks.face.data import index_identities

    _people(tmp_path / "train", "abcdefg")
    folds = [index_identities(tmp_path / "train", Fold(k, 3), seed=2) for k in range(3)]
    held = [person for index in folds for person in index.names["val"]]
    assert sorted(held) == list("abcdefg") and [len(i.names["val"]) for i in folds] == [3, 2, 2]
    for index in folds:
        assert {path.parent.name for path, _ in index.splits["val"]} == set(index.names["val"])
        assert not set(index.names["train"]) & set(index.names["val"])
    with pytest.raises(VisionsuiteError, match="7 identities are too few to hold 1 out"):
        index_identities(tmp_path / "train", Fold(0, 7))
    config = load_config("face", overrides={"data.path": str(tmp_path / "train")},
                         sets=("data.folds=3", "data.fold=1", "data.image_size=16",
                               "data.face_detect=false"))
    data = get_task("face").load_data(config)
    assert (len(data.train), len(data.val)) == (10, 4)
    assert data.source.endswith("val: fold 1 of 3 (seed 0)")
    config.data.val_pairs = str(tmp_path / "pairs.txt")
    with pytest.raises(VisionsuiteError, match="data.folds=3: the pairs of data.val_pairs"):
        get_task("face").load_data(config)
    _people(tmp_path / "test", "xy")
    config.data.val_pairs, config.data.path = None, str(tmp_path)
    with pytest.raises(VisionsuiteError, match="has a val split of its own"):
        get_task("face").load_data(config)


def test_one_folder_of_everyones_photos_names_the_people_in_the_file_names(tmp_path):
    """The Yale faces as they come: yalefaces/subject01.happy (GIF without an extension),
    one folder for all 15 people, a Readme, and subject01.gif beside subject01.happy."""
    from PIL import Image

    from visionsuite.tasks.face.commands import check_face_folders
    from visionsuite.tasks.face.data import index_identities

    root = tmp_path / "yalefaces"
    root.mkdir()
    for person in range(1, 6):
        for condition in ("centerlight", "happy", "sad"):
            Image.new("L", (8, 8), 40 * person).save(root / f"subject{person:02d}.{condition}",
                                                    format="GIF")
    Image.new("L", (8, 8)).save(root / "subject01.gif")
    (root / "Readme.txt").write_text("Yale face database")
    index = index_identities(root, val_fraction=0.4)
    assert sorted(index.names["train"] + index.names["val"]) == [
        f"subject{n:02d}" for n in range(1, 6)]
    people = {path.name: index.names[split][i]
              for split, items in index.splits.items() for path, i in items}
    assert people["subject01.gif"] == "subject01" and people["subject03.sad"] == "subject03"
    assert len(people) == 16 and index.odd_files == [root / "Readme.txt"]
    assert "  people named by the file names (subject01.centerlight: subject01)" in \
        check_face_folders(str(root)).text.splitlines()
    Image.new("L", (8, 8)).save(root / "portrait.png")  # names no one
    with pytest.raises(VisionsuiteError, match="portrait.png: its name names no person"):
        index_identities(root)
    for path in root.iterdir():
        path.unlink()
    for name in ("Aaron_Eckhart_0001.jpg", "Aaron_Eckhart_0002.jpg", "Bo_Li_0001.jpg", "Bo_Li.jpg"):
        Image.new("RGB", (8, 8)).save(root / name)  # LFW's names, in one folder
    assert index_identities(root, val_fraction=1.0).names["val"] == ["Aaron_Eckhart", "Bo_Li"]
    for path in root.iterdir():  # names that group no one: one photo each
        path.unlink()
    for name in ("anna.png", "bob.png", "carl.png"):
        Image.new("L", (8, 8)).save(root / name)
    with pytest.raises(VisionsuiteError, match="expected one sub-folder per person"):
        index_identities(root)


def test_a_list_of_each_images_person_names_the_people_as_celeba_ships_them(tmp_path):
    """CelebA: Img/img_align_celeba/000001.jpg ..., Anno/identity_CelebA.txt of lines
    `000001.jpg 2880`; people held out whole, by fraction."""
    from PIL import Image

    from visionsuite.tasks.face.commands import check_face_folders
    from visionsuite.tasks.face.data import index_identities

    images = tmp_path / "celeba" / "Img" / "img_align_celeba"
    images.mkdir(parents=True)
    (tmp_path / "celeba" / "Anno").mkdir()
    lines = []
    for number in range(1, 13):
        Image.new("L", (8, 8), 20 * number).save(images / f"{number:06d}.jpg")
        lines.append(f"{number:06d}.jpg {1000 + number % 4 * 7}")
    listed = tmp_path / "celeba" / "Anno" / "identity_CelebA.txt"
    listed.write_text("\n".join(lines) + "\n")
    index = index_identities(tmp_path / "celeba", val_fraction=0.5)
    assert index.listed_in == listed and index.held_out_by_fraction
    assert sorted(index.names["train"] + index.names["val"]) == ["1000", "1007", "1014", "1021"]
    people = {path.name: index.names[split][i]
              for split, items in index.splits.items() for path, i in items}
    assert people["000004.jpg"] == "1000" and people["000001.jpg"] == "1007"
    assert {people[path.name] for path, _ in index.splits["val"]} == set(index.names["val"])
    assert "  people named in Anno/identity_CelebA.txt (12 images)" in \
        check_face_folders(str(tmp_path / "celeba")).text.splitlines()
    listed.write_text("image_id,identity\n000001.jpg,5\n000002.jpg,5\n000003.jpg,6\n"
                      "000004.jpg,6\n")  # a CSV with its header
    assert index_identities(tmp_path / "celeba", val_fraction=1.0).names["val"] == ["5", "6"]
    for text, error in (("000001.jpg 5\n000099.jpg 6\n", "identity_CelebA.txt:2: image "
                         "'000099.jpg' is not there"),
                        ("000001.jpg 5\n000001.jpg 6\n", "identity_CelebA.txt:2: 000001.jpg "
                         "is listed as 5 and as 6"),
                        ("000001.jpg 5 extra\n", "identity_CelebA.txt:1: expected an image and "
                         "its person"),
                        ("000001.jpg 5\n../outside.jpg 6\n", "path leaves the dataset")):
        listed.write_text(text)
        with pytest.raises(VisionsuiteError, match=error):
            index_identities(tmp_path / "celeba")


def test_evaluation_on_people_without_a_held_out_folder_takes_them_all(tmp_path):
    from PIL import Image

    from visionsuite.tasks.face.data import index_identities

    for person in "abc":
        (tmp_path / person).mkdir()
        for i in range(2):
            Image.new("L", (8, 8)).save(tmp_path / person / f"{i}.png")
    index = index_identities(tmp_path, val_fraction=1.0, train=False)
    assert index.names["val"] == ["a", "b", "c"] and len(index.splits["val"]) == 6


def test_too_few_identities_to_hold_out_is_a_clear_error(tmp_path):
    from PIL import Image

    from visionsuite.tasks.face.data import index_identities

    for person in "ab":
        (tmp_path / person).mkdir()
        Image.new("L", (8, 8)).save(tmp_path / person / "0.png")
    with pytest.raises(VisionsuiteError, match="too few"):
        index_identities(tmp_path)
    # A folder's errors speak of people, not classes.
    (tmp_path / "c").mkdir()
    with pytest.raises(VisionsuiteError, match=f"{tmp_path / 'c'}: person folder holds no"):
        index_identities(tmp_path)
    with pytest.raises(VisionsuiteError, match="one sub-folder per person .at least 2., found 0"):
        index_identities(tmp_path / "a")


def test_data_classes_is_refused_for_faces_not_ignored():
    from visionsuite.config import load_config
    from visionsuite.tasks.face import TASK

    config = load_config("face", sets=["data.classes=[s1, s2]"])
    with pytest.raises(VisionsuiteError, match="data.classes does not apply to faces"):
        TASK.load_data(config)


class FakeEmbedder:
    """Embeds by a fixed random projection of the pixels: a deterministic 'model'."""

    image_size, channels, threshold, detect = 16, 1, 0.5, "false"

    def __init__(self, seed=0):
        self.projection = np.random.default_rng(seed).normal(size=(16 * 16, 8))

    def probe(self):
        from visionsuite.tasks.face.commands import probe_image

        return fm.unit(probe_image(16, 1).reshape(1, -1) @ self.projection)[0]


def test_gallery_checks_its_format_and_its_model(tmp_path):
    from visionsuite.tasks.face.commands import read_gallery

    path = tmp_path / "gallery.json"
    fresh = read_gallery(path, FakeEmbedder(), missing_ok=True)
    assert fresh["people"] == {} and len(fresh["model"]["probe"]) == 8
    fresh["people"]["ann"] = {"embeddings": [[0.0] * 8]}
    path.write_text(json.dumps(fresh))
    assert read_gallery(path, FakeEmbedder())["people"].keys() == {"ann"}
    with pytest.raises(VisionsuiteError, match="made by another model"):
        read_gallery(path, FakeEmbedder(seed=1))
    for broken, problem in (("{not json", "not a readable gallery"),
                            (json.dumps({"format": "x"}), "not a valid gallery"),
                            (json.dumps({**fresh, "people": {"bo": {"embeddings": [[1.0]]}}}),
                             "no 8-d embeddings")):
        path.write_text(broken)
        with pytest.raises(VisionsuiteError, match=problem):
            read_gallery(path, FakeEmbedder())
        assert path.read_text() == broken  # left unchanged
    with pytest.raises(VisionsuiteError, match="no such gallery"):
        read_gallery(tmp_path / "missing.json", FakeEmbedder())


def test_flip_averaging_embeds_a_face_and_its_mirror_image_alike():
    from visionsuite.tasks.face.model import build_training_model, inference_embedder

    model = build_training_model(tiny_face_config(), identities=3)
    averaged = inference_embedder(model, flip_average=True)
    faces = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    direct = averaged.predict(faces, verbose=0)
    mirrored = averaged.predict(faces[:, :, ::-1], verbose=0)
    assert np.allclose(direct, mirrored, atol=1e-5)
    assert np.allclose(np.linalg.norm(direct, axis=1), 1.0, atol=1e-5)
    # Each face with its own mirror image, though both pass the network in one batch.
    plain = inference_embedder(model, flip_average=False)
    assert plain.output_shape == (None, 128)
    summed = plain.predict(faces, verbose=0) + plain.predict(faces[:, :, ::-1], verbose=0)
    expected = summed / np.linalg.norm(summed, axis=1, keepdims=True)
    assert np.allclose(direct, expected, atol=1e-5)
    assert np.allclose(averaged.predict(faces[1:2], verbose=0), expected[1:2], atol=1e-5)


def test_triplet_training_batches_people_by_default():
    from visionsuite.tasks.face.model import images_per_identity

    assert images_per_identity(tiny_face_config(**{"train.loss": "triplet"})) == 4
    assert images_per_identity(tiny_face_config()) == 0  # ArcFace: random batches
    assert images_per_identity(tiny_face_config(**{"train.images_per_identity": 2})) == 2
    with pytest.raises(VisionsuiteError, match="train.images_per_identity must be"):
        images_per_identity(tiny_face_config(**{"train.images_per_identity": 1}))


def test_a_collapsed_embedding_is_warned_about(capsys):
    from types import SimpleNamespace

    from visionsuite.tasks.face import TASK

    data = SimpleNamespace(source="orl", train=None)
    metrics = {"best_threshold": 0.9987, "identities": 10, "images": 100,
               "thresholds_at_far": {"0.01": 0.9991, "0.001": 0.9995}}
    assert TASK.inference_settings(metrics, data, tiny_face_config())["threshold"] == 0.9987
    assert "nearly collapsed" in capsys.readouterr().err
    TASK.inference_settings({**metrics, "best_threshold": 0.45}, data, tiny_face_config())
    assert capsys.readouterr().err == ""


def test_a_collapsed_epoch_is_never_kept_as_the_best():
    from visionsuite.tasks.face import TASK
    from visionsuite.tasks.face.train import selection_tar

    assert TASK.monitor == "val_selection_tar"
    assert selection_tar({"best_threshold": 0.9995, "tar_at_far_0.01": 0.9}) == 0.0
    assert selection_tar({"best_threshold": 0.52, "tar_at_far_0.01": 0.7}) == 0.7


def test_answers_for_many_images_keep_the_order_they_were_given_in():
    from visionsuite.tasks.face.commands import in_input_order

    paths = [Path("a.jpg"), Path("wall.jpg"), Path("b.jpg")]
    ordered = in_input_order([{"image": "a.jpg"}, {"image": "b.jpg"}],
                             ["wall.jpg: no face found"], paths)
    assert ordered == [{"image": "a.jpg"}, {"image": "wall.jpg", "error":
                                            "wall.jpg: no face found"}, {"image": "b.jpg"}]
    # A name with ': ' in it (allowed on Linux) keeps its place too.
    paths = [Path("x: y.jpg"), Path("b.jpg")]
    ordered = in_input_order([{"image": "b.jpg"}], ["x: y.jpg: no face found"], paths)
    assert ordered == [{"image": "x: y.jpg", "error": "x: y.jpg: no face found"},
                       {"image": "b.jpg"}]


def test_identities_of_one_image_are_one_warning_however_many(capsys, tmp_path):
    """LFW holds 4069 people of one photo: one line names ten, not a line each."""
    from visionsuite.tasks.face import _warn_of_single_images

    _warn_of_single_images(["loner"], tmp_path)
    _warn_of_single_images([f"p{i:02d}" for i in range(15)], tmp_path)
    _warn_of_single_images([], tmp_path)
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        f"warning: {tmp_path / 'loner'}: identity 'loner' has a single image: no same-person "
        "pair",
        f"warning: {tmp_path}: 15 identities have a single image, so no same-person pair: "
        "p00, p01, p02, p03, p04, p05, p06, p07, p08, p09 and 5 more"]


def test_photos_of_several_faces_are_named_ten_at_a_time(monkeypatch, capsys):
    """Many LFW photos hold a second face behind the first: ten are named, the rest counted."""
    from visionsuite.tasks.face import commands, faces

    class Predictor:
        image_size, channels = 8, 3

        def predict(self, images):
            return np.ones((len(images), 4))

    found = faces.FaceSet(np.zeros((13, 8, 8, 3), np.uint8), list(range(13)),
                          crowded=[(i, 2) for i in range(12)])
    monkeypatch.setattr(faces, "prepare_faces", lambda *args, **kwargs: found)
    embedder = commands.Embedder(Predictor(), None, "true", 0.5)
    embeddings, kept, _ = embedder.embed_files([Path(f"p{i}.jpg") for i in range(13)])
    assert embeddings.shape == (13, 4) and kept == list(range(13))
    err = capsys.readouterr().err
    assert err.count(": 2 faces found; the largest is used") == 10
    assert "p9.jpg: 2 faces" in err and "p10.jpg" not in err
    assert "2 more photos hold several faces; the largest of each is used" in err


def test_training_names_ten_images_it_skips_and_counts_the_rest(monkeypatch, capsys):
    from visionsuite.tasks.face import _decode, faces

    found = faces.FaceSet(np.zeros((1, 8, 8, 3), np.uint8), [0],
                          skipped=[f"p{i}.jpg: no face found" for i in range(1, 14)],
                          mode="detected faces", summary="1 face cropped")
    monkeypatch.setattr(faces, "prepare_faces", lambda *args, **kwargs: found)
    items = [(Path(f"p{i}.jpg"), 0) for i in range(14)]
    split = _decode(items, ["p"], load_config("face", sets=["data.face_detect=true"]), "train")
    assert len(split.targets) == 1
    err = capsys.readouterr().err
    assert err.count("no face found; skipped") == 10
    assert "3 more train images skipped (`visionsuite data check face` names more)" in err


def test_flip_averaging_sums_in_float32_under_a_mixed_precision_policy():
    from visionsuite.core.train import dtype_policy, float32_inference_twin
    from visionsuite.tasks.face.model import build_training_model, inference_embedder

    model = build_training_model(tiny_face_config(), identities=3)
    with dtype_policy("mixed_bfloat16"):  # as while a bfloat16 training verifies each epoch
        _, averaged = float32_inference_twin(
            model, lambda twin: inference_embedder(twin, flip_average=True))
    for name in ("mirror", "sum", "embedding"):
        assert averaged.get_layer(name).dtype_policy.name == "float32", name
