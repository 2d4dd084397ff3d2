"""Verification pairs files (LFW's protocol, `evaluate --pairs`): reading them, the folds, and
LFW's cross-validated accuracy."""

import numpy as np
import pytest
from PIL import Image

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.face.pairs import (cross_validated_accuracy, most_accurate_threshold,
                                          pair_metrics, read_pairs, wrong_pairs)


def _people(root, named: dict) -> None:
    """Tiny image files: {person: [file names]}."""
    for person, files in named.items():
        (root / person).mkdir(parents=True, exist_ok=True)
        for name in files:
            Image.new("L", (8, 8), 128).save(root / person / name)


def _lfw(tmp_path):
    """An LFW layout: pairs.txt beside lfw/<person>/<person>_NNNN.jpg."""
    lfw = tmp_path / "lfw"
    _people(lfw, {"Ann_Lee": ["Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg", "Ann_Lee_0003.jpg"],
                  "Bo": ["Bo_0001.jpg", "Bo_0002.jpg"], "Cy": ["Cy_0001.jpg"]})
    return lfw


LFW_TWO_FOLDS = """2\t2
Ann_Lee\t1\t2
Bo\t1\t2
Ann_Lee\t1\tBo\t1
Bo\t2\tCy\t1
Ann_Lee\t2\t3
Bo\t2\t1
Ann_Lee\t3\tCy\t1
Cy\t1\tBo\t1
"""


def test_lfw_pairs_name_their_images_and_folds_and_are_found_beside_the_images(tmp_path):
    lfw = _lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text(LFW_TWO_FOLDS)
    pairs = read_pairs(tmp_path / "pairs.txt")  # the file lies beside lfw/, not in it
    assert pairs.root == lfw
    named = [(pairs.paths[a].name, pairs.paths[b].name) for a, b in zip(pairs.first,
                                                                        pairs.second)]
    assert named[:4] == [("Ann_Lee_0001.jpg", "Ann_Lee_0002.jpg"), ("Bo_0001.jpg", "Bo_0002.jpg"),
                         ("Ann_Lee_0001.jpg", "Bo_0001.jpg"), ("Bo_0002.jpg", "Cy_0001.jpg")]
    assert len(pairs.paths) == 6  # each image once
    assert pairs.same.tolist() == [True, True, False, False] * 2
    assert pairs.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]


def test_a_csv_of_pairs_without_counts_gets_its_folds_from_its_blocks(tmp_path):
    """Kaggle's pairs.csv: a line of column names, commas, no header of counts."""
    _lfw(tmp_path)
    rows = [line.split("\t") for line in LFW_TWO_FOLDS.splitlines()[1:]]
    text = "name,imagenum1,imagenum2,\n" + "".join(",".join(row) + ("\n" if len(row) == 4
                                                                    else ",\n") for row in rows)
    (tmp_path / "pairs.csv").write_text(text)
    pairs = read_pairs(tmp_path / "pairs.csv", tmp_path / "lfw")
    assert pairs.same.tolist() == [True, True, False, False] * 2
    assert pairs.folds.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    # Blocks of unequal length are no folds: one set.
    (tmp_path / "uneven.csv").write_text("Ann_Lee,1,2\nBo,1,2\nAnn_Lee,1,Bo,1\n"
                                         "Ann_Lee,2,3\nCy,1,Bo,1\nBo,2,Cy,1\n")
    assert read_pairs(tmp_path / "uneven.csv", tmp_path / "lfw").folds.tolist() == [0] * 6


def test_listed_pairs_of_paths_and_numbered_files_as_orl_names_them(tmp_path):
    _people(tmp_path / "set", {"s1": ["1.pgm", "2.pgm"], "s2": ["1.pgm"]})
    (tmp_path / "set" / "mine.txt").write_text("# my pairs\ns1/1.pgm s1/2.pgm 1\n"
                                               "s1/1.pgm s2/1.pgm 0\n")
    pairs = read_pairs(tmp_path / "set" / "mine.txt")
    assert pairs.same.tolist() == [True, False] and pairs.fold_count == 1
    (tmp_path / "orl.txt").write_text("s1 1 2\ns1 2 s2 1\n")  # <person>/<number>.*
    pairs = read_pairs(tmp_path / "orl.txt", tmp_path / "set")
    assert [path.name for path in pairs.paths] == ["1.pgm", "2.pgm", "1.pgm"]


def test_bad_pairs_files_are_errors_that_name_the_line(tmp_path):
    lfw = _lfw(tmp_path)
    Image.new("L", (8, 8)).save(tmp_path / "outside.jpg")  # beside the images' folder
    cases = {
        "Ann_Lee 1 9\nBo 1 7\nBo 1 2\n": "images it names are not under .* \\(2 missing",
        "Ann_Lee 1\n": "line 1: expected 'person n1 n2'",
        "2 1\nAnn_Lee 1 2\nAnn_Lee 1 Bo 1\n": "header says 2 folds of 1 same- and 1 "
                                               "different-person pairs, 4 lines; it holds 2",
        "../outside.jpg Bo/Bo_0002.jpg 1\n": "path leaves the dataset folder",
        "# nothing\n": "no pairs in it",
    }
    for text, expected in cases.items():
        (tmp_path / "bad.txt").write_text(text)
        with pytest.raises(VisionsuiteError, match=expected):
            read_pairs(tmp_path / "bad.txt", lfw)
    (tmp_path / "bad.txt").write_text("Ann_Lee 1 9\n")
    with pytest.raises(VisionsuiteError, match=r"line 1: Ann_Lee/Ann_Lee_0009\.\*"):
        read_pairs(tmp_path / "bad.txt", lfw)
    with pytest.raises(VisionsuiteError, match="nowhere: no such folder"):
        read_pairs(tmp_path / "bad.txt", tmp_path / "nowhere")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00 not text")
    with pytest.raises(VisionsuiteError, match="not a text file of pairs"):
        read_pairs(tmp_path / "binary.txt", lfw)


def test_the_most_accurate_threshold_and_lfw_accuracy_by_hand():
    scores = np.array([0.9, 0.8, 0.4, 0.7, 0.3, 0.1])
    same = np.array([True, True, True, False, False, False])
    # Accepting >= 0.75 gets 5 of 6 right (0.4 refused); >= 0.35 also 5 (0.7 accepted):
    # the higher cut wins the tie, halfway between 0.8 and 0.7.
    assert most_accurate_threshold(scores, same) == pytest.approx(0.75)
    assert most_accurate_threshold(np.array([0.5, 0.2]), np.array([True, False])) == \
        pytest.approx(0.35)
    # Each fold at the cut of the other: fold 1 at 0.35 (between fold 2's 0.5 and 0.2) gets
    # both right; fold 2 at 0.6 (between 0.9 and 0.3) refuses its same-person 0.5.
    folds = cross_validated_accuracy(np.array([0.9, 0.3, 0.5, 0.2]),
                                     np.array([True, False, True, False]), np.array([0, 0, 1, 1]))
    assert [fold["accuracy"] for fold in folds] == [1.0, 0.5]
    assert [fold["threshold"] for fold in folds] == pytest.approx([0.35, 0.6])


def _separable_pairs(tmp_path):
    """LFW_TWO_FOLDS read, the person of each image, and embeddings one axis per person."""
    lfw = _lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text(LFW_TWO_FOLDS)
    pairs = read_pairs(tmp_path / "pairs.txt", lfw)
    person = [path.parent.name for path in pairs.paths]
    axes = {"Ann_Lee": [1, 0, 0], "Bo": [0, 1, 0], "Cy": [0, 0, 1]}
    return pairs, person, np.array([axes[name] for name in person], float)


def test_pair_metrics_of_separable_embeddings_and_of_pairs_left_out(tmp_path):
    pairs, person, embeddings = _separable_pairs(tmp_path)
    metrics = pair_metrics(embeddings, pairs, threshold=0.5)
    assert metrics["roc_auc"] == 1.0 and metrics["accuracy"] == 1.0
    assert metrics["cv_accuracy"] == 1.0 and metrics["cv_accuracy_se"] == 0.0
    assert (metrics["same_pairs"], metrics["different_pairs"]) == (4, 4)
    # Cy's photo without a face: the 3 pairs holding it are left out.
    kept = [i for i, name in enumerate(person) if name != "Cy"]
    fewer = pairs.keep_images(kept)
    assert len(fewer.same) == 5 and fewer.same.sum() == 4
    assert pair_metrics(embeddings[kept], fewer, None)["roc_auc"] == 1.0


def test_the_pairs_judged_wrong_name_their_lines_and_images_worst_first(tmp_path):
    lfw = _lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text(LFW_TWO_FOLDS)
    pairs = read_pairs(tmp_path / "pairs.txt", lfw)
    assert pairs.lines.tolist() == list(range(2, 10))  # line 1 is the header
    # Lines 2..9: same .9 .3 | different .2 .6 | same .1 .8 | different .7 .4
    scores = np.array([0.9, 0.3, 0.2, 0.6, 0.1, 0.8, 0.7, 0.4])
    rows = wrong_pairs(scores, pairs, cut=0.5)
    assert [(row["line"], row["pair"], row["similarity"]) for row in rows] == [
        (6, "same", 0.1), (3, "same", 0.3), (8, "different", 0.7), (5, "different", 0.6)]
    assert (rows[0]["image_a"], rows[0]["image_b"]) == ("Ann_Lee/Ann_Lee_0002.jpg",
                                                        "Ann_Lee/Ann_Lee_0003.jpg")
    assert [row["line"] for row in wrong_pairs(scores, pairs, 0.5, shown=1)] == [6, 8]
    # After pairs are left out, each keeps its own line.
    kept = [i for i, path in enumerate(pairs.paths) if path.parent.name != "Cy"]
    assert pairs.keep_images(kept).lines.tolist() == [2, 3, 4, 6, 7]


def test_pair_metrics_count_the_wrong_pairs_at_the_models_threshold_else_the_best(tmp_path):
    pairs, _, embeddings = _separable_pairs(tmp_path)
    metrics = pair_metrics(embeddings, pairs, threshold=1.5)  # refuses every pair
    assert (metrics["false_rejects"], metrics["false_accepts"]) == (4, 0)
    assert [row["pair"] for row in metrics["wrong_pairs"]] == ["same"] * 4
    assert metrics["judged_at"] == "the model's threshold 1.5000"
    metrics = pair_metrics(embeddings, pairs, threshold=None)  # separable: none wrong
    assert (metrics["false_rejects"], metrics["false_accepts"], metrics["wrong_pairs"]) == \
        (0, 0, [])
    assert "most accurate threshold on these pairs" in metrics["judged_at"]


def test_pairs_of_photos_without_a_face_are_left_out_and_counted(tmp_path, monkeypatch, capsys):
    """Ten photos without a face are named, the rest counted; their pairs are left out."""
    from visionsuite.tasks.face import commands
    from visionsuite.tasks.face.pairs import evaluate_pairs

    people = {f"p{i:02d}": [f"p{i:02d}_0001.jpg", f"p{i:02d}_0002.jpg"] for i in range(14)}
    _people(tmp_path / "lfw", people)
    lines = [f"p{i:02d} 1 2" for i in range(14)] + [f"p{i:02d} 1 p{i + 1:02d} 1"
                                                    for i in range(13)]
    (tmp_path / "pairs.txt").write_text("\n".join(lines))

    class Embedder:
        threshold, source = 0.5, type("Source", (), {"path": "model.keras", "kind": "keras"})

        def embed_files(self, paths):  # no face in the second photo of p00..p11
            kept = [i for i, path in enumerate(paths) if not path.stem.endswith("0002")
                    or int(path.stem[1:3]) >= 12]
            person = [int(paths[i].stem[1:3]) for i in kept]
            vectors = np.eye(14)[person]
            skipped = [f"{paths[i]}: no face found" for i in range(len(paths)) if i not in kept]
            return vectors, kept, skipped

    monkeypatch.setattr(commands, "load_embedder", lambda run, detect=None: Embedder())
    result = evaluate_pairs("run", tmp_path / "pairs.txt")
    err = capsys.readouterr().err
    assert err.count("no face found; its pairs left out") == 10
    assert "2 more photos without a face; their pairs left out" in err
    assert result["pairs_left_out"] == 12 and result["same_pairs"] == 2
    assert result["roc_auc"] == 1.0 and result["different_pairs"] == 13


def _encoded(shade: int, kind: str = "JPEG") -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (12, 12), (shade, 255 - shade, 40)).save(buffer, kind)
    return buffer.getvalue()


def _python2_pickle(images: list[bytes], same: list[bool]) -> bytes:
    """What InsightFace's Python 2 tools wrote: protocol 2, images as str (BINSTRING)."""
    import struct

    images_part = b"](" + b"".join(b"T" + struct.pack("<I", len(image)) + image
                                   for image in images) + b"e"
    flags_part = b"](" + b"".join(b"\x88" if flag else b"\x89" for flag in same) + b"e"
    return b"\x80\x02" + images_part + flags_part + b"\x86."


@pytest.mark.parametrize("writer", ["python2", "protocol2", "protocol5"])
def test_insightface_bin_pairs_are_read_with_their_images_in_ten_folds(tmp_path, writer):
    """lfw.bin, agedb_30.bin, ...: a pickle of (encoded images, a flag per pair), pair i being
    images 2i and 2i+1, scored in 10 folds of consecutive pairs; Python 2's pickles, whose
    images were str, and Python 3's at protocol 2 (bytes through _codecs) and 5 alike."""
    import pickle

    images = [_encoded(shade) for shade in range(0, 240, 6)]  # 40 images: 20 pairs
    images[3] = _encoded(99, "PNG")
    same = [index % 2 == 0 for index in range(20)]
    packed = _python2_pickle(images, same) if writer == "python2" else \
        pickle.dumps((images, same), protocol=int(writer[-1]))
    (tmp_path / "lfw.bin").write_bytes(packed)
    pairs = read_pairs(tmp_path / "lfw.bin")
    assert pairs.packed and pairs.images_source == str(tmp_path / "lfw.bin")
    assert [path.read_bytes() for path in pairs.paths] == images
    assert pairs.paths[3].suffix == ".png" and pairs.paths[2].suffix == ".jpg"
    assert pairs.first.tolist() == list(range(0, 40, 2))
    assert pairs.second.tolist() == list(range(1, 40, 2))
    assert pairs.same.tolist() == same
    assert pairs.folds.tolist() == [fold for fold in range(10) for _ in range(2)]
    assert pairs.lines.tolist() == list(range(1, 21))  # pair numbers
    assert not (tmp_path / "lfw").exists()  # nothing is written beside the file
    scores = np.where(pairs.same, 0.2, 0.8)  # every pair wrong at 0.5
    first = wrong_pairs(scores, pairs, cut=0.5)[0]
    assert first == {"pair_number": 1, "pair": "same", "similarity": 0.2,
                     "image_a": "lfw.bin[0]", "image_b": "lfw.bin[1]"}


def test_a_bin_that_would_run_code_or_is_no_pair_set_is_refused(tmp_path):
    """A pickle builds objects by calling what it names: a .bin naming anything but lists of
    images and booleans is an error, and what it names is never called."""
    import pickle

    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return open, (str(marker), "w")

    images = [_encoded(shade) for shade in (10, 20)]
    cases = {
        "payload.bin": pickle.dumps((images, [Payload()])),
        "numpy.bin": pickle.dumps((images, np.array([True]))),
        "odd.bin": pickle.dumps((images + images[:1], [True])),
        "flags.bin": pickle.dumps((images, ["yes"])),
        "text.bin": b"Ann_Lee 1 2\n",
        "cut.bin": pickle.dumps((images, [True]))[:-20],
    }
    expected = {"payload.bin": "names io.open", "numpy.bin": "names numpy",
                "odd.bin": "3 images for 1 pairs", "flags.bin": "same-person flags",
                "text.bin": "not an InsightFace .bin", "cut.bin": "not an InsightFace .bin"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        with pytest.raises(VisionsuiteError, match=expected[name]) as raised:
            read_pairs(tmp_path / name)
        assert str(raised.value).startswith(str(tmp_path / name)), raised.value
    assert not marker.exists()
    with pytest.raises(VisionsuiteError, match="holds its images"):
        read_pairs(tmp_path / "payload.bin", tmp_path)


def test_a_bin_as_data_val_pairs_is_the_val_split_of_its_packed_faces(tmp_path):
    """data.val_pairs=lfw.bin: the val split is the .bin's images, scored on its pairs, with
    no folder of images beside it; a folder given for them is an error."""
    import pickle

    from visionsuite.config import load_config
    from visionsuite.tasks.face import TASK

    images = [_encoded(shade, "PNG") for shade in range(0, 240, 6)]
    same = [index % 2 == 0 for index in range(20)]
    (tmp_path / "lfw.bin").write_bytes(pickle.dumps((images, same)))
    config = load_config("face", overrides={"data.path": str(tmp_path),
                                            "data.val_pairs": str(tmp_path / "lfw.bin"),
                                            "data.face_detect": False,
                                            "data.image_size": 16})
    data = TASK.load_data(config, train=False)
    assert len(data.val.paths) == 40 and data.val.images.shape[1:3] == (16, 16)
    assert data.val.pairs.packed and data.val.pairs.same.tolist() == same
    assert data.val.pairs.fold_count == 10
    assert data.source == f"{tmp_path}, val: the pairs of {tmp_path / 'lfw.bin'}"
    config.data.val_pairs_images = str(tmp_path)
    with pytest.raises(VisionsuiteError, match="holds its images"):
        TASK.load_data(config, train=False)
