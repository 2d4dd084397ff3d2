"""InsightFace's face packs: MXNet RecordIO (train.rec), read without MXNet."""

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionsuite.errors import VisionsuiteError

MAGIC = struct.pack("<I", 0xCED7230A)


def record(payload: bytes, kind: int = 0) -> bytes:
    """One RecordIO record: magic, kind and length, payload, padding to 4 bytes."""
    return MAGIC + struct.pack("<I", kind << 29 | len(payload)) + payload \
        + bytes(-len(payload) % 4)


def image_payload(label, image: bytes = b"") -> bytes:
    """An IRHeader (flag, label, id, id2), its extra labels where label is a tuple, then the
    image."""
    if isinstance(label, tuple):
        return struct.pack("<IfQQ", len(label), 0.0, 0, 0) \
            + struct.pack(f"<{len(label)}f", *label) + image
    return struct.pack("<IfQQ", 0, float(label), 0, 0) + image


def face_jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (24, 24, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


def insightface_pack(path: Path, people: int, each: int) -> None:
    """A pack laid out as InsightFace's: a header record, the images (labels 0..people-1),
    then a record per identity giving its range of records."""
    count = people * each
    packed = [record(image_payload((count + 1.0, count + 1.0 + people)))]
    packed += [record(image_payload(n // each, face_jpeg(n))) for n in range(count)]
    packed += [record(image_payload((1.0 + p * each, 1.0 + (p + 1) * each)))
               for p in range(people)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(packed))


def test_records_are_read_whole_and_split_ones_joined_with_the_magic(tmp_path):
    from visionsuite.core.recordio import labelled_images, records

    path = tmp_path / "train.rec"
    split = image_payload(3, b"\xff\xd8" + b"a" * 6)  # its image held the magic: split there
    path.write_bytes(record(image_payload(1.0, b"first")) + record(split, 1)
                     + record(b"tail", 3) + record(image_payload((7.0, 2.0), b"multi")))
    assert list(records(path))[1] == split + MAGIC + b"tail"
    assert [(n, label, image) for n, label, image in labelled_images(path)] == [
        (0, 1, b"first"), (1, 3, b"\xff\xd8" + b"a" * 6 + MAGIC + b"tail"), (2, 7, b"multi")]
    path.write_bytes(record(b"x" * 30)[:-8])
    with pytest.raises(VisionsuiteError, match="train.rec: the record at byte 0 is cut short"):
        list(records(path))
    path.write_bytes(b"PK\x03\x04" + bytes(20))
    with pytest.raises(VisionsuiteError, match="not a RecordIO file"):
        list(records(path))


def test_an_insightface_pack_trains_its_people_and_holds_some_out(tmp_path):
    from visionsuite.tasks.face.commands import check_face_folders
    from visionsuite.tasks.face.data import index_identities

    root = tmp_path / "faces_webface_112x112"
    insightface_pack(root / "train.rec", people=6, each=3)
    (root / "property").write_text("6,112,112")
    index = index_identities(root, val_fraction=0.34)
    assert index.packed_in == root / "train.rec" and index.held_out_by_fraction
    assert sorted(index.names["train"] + index.names["val"]) == [str(p) for p in range(6)]
    assert len(index.splits["val"]) == 3 * len(index.names["val"]) == 6
    people = {path.name: index.names[split][i]
              for split, items in index.splits.items() for path, i in items}
    assert people["record1.jpg"] == "0" and people["record18.jpg"] == "5"
    assert "visionsuite-train.rec-" in str(index.splits["val"][0][0])
    report = check_face_folders(str(root)).text
    assert "faces packed in train.rec (RecordIO), unpacked to a temporary folder" in report
    everyone = index_identities(root, val_fraction=0.34, everyone_trains=True)
    assert len(everyone.splits["train"]) == 18  # data.val_pairs=lfw.bin picks the epoch


def test_train_and_evaluate_take_a_pack_with_only_data(tmp_path):
    import json

    from test_cli import invoke

    root = tmp_path / "faces_webface_112x112"
    insightface_pack(root / "train.rec", people=8, each=3)
    result = invoke("train", "face", "--data", root, "--output", tmp_path,
                    "--image-size", 16, "--epochs", 2, "--batch-size", 8,
                    "--set", "train.tensorboard=false", "--set", "data.val_fraction=0.25",
                    "--set", "data.face_detect=false")
    assert result.exit_code == 0, result.output
    run = tmp_path / "face" / "exp"
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["identities"] == 2 and metrics["images"] == 6, metrics
    result = invoke("evaluate", run, "--json", tmp_path / "again.json")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "again.json").read_text())["images"] == 6
