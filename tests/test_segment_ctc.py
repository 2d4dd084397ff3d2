"""Segmentation sets laid out as the Cell Tracking Challenge ships its training data: a folder
per time-lapse sequence, its frames' instance masks in NN_GT/SEG/ (or NN_ST/SEG/)."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from test_cli import invoke
from test_segment_cli import TINY_SEGMENT
from visionsuite.errors import VisionsuiteError


def cell_frame(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A 16-bit frame of bright cells and its mask numbering them (not 1..N: track ids)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(100, 400, (40, 40)).astype(np.uint16)
    cells = np.zeros((40, 40), np.uint16)
    for number, place in enumerate(rng.permutation(16)[:rng.integers(4, 12)]):
        row, column = divmod(int(place), 4)
        cells[row * 10 + 2:row * 10 + 8, column * 10 + 2:column * 10 + 8] = 3 * number + 10
        frame[cells == 3 * number + 10] = 3000
    return frame, cells


def write_ctc(root: Path, sequences: dict[str, str], frames: int = 6) -> Path:
    """A CTC training set: each sequence's frames, and its even frames' masks in its
    `truth` (GT or ST) SEG folder, tracking markers in GT/TRA/ for every frame."""
    for sequence, truth in sequences.items():
        for folder in (sequence, f"{sequence}_{truth}/SEG", f"{sequence}_GT/TRA"):
            (root / folder).mkdir(parents=True, exist_ok=True)
        for number in range(frames):
            frame, cells = cell_frame(int(sequence) * 100 + number)
            Image.fromarray(frame).save(root / sequence / f"t{number:03d}.tif")
            Image.fromarray(cells > 0).save(root / f"{sequence}_GT/TRA/man_track{number:03d}.tif")
            if number % 2 == 0:
                Image.fromarray(cells).save(root / f"{sequence}_{truth}/SEG/"
                                            f"man_seg{number:03d}.tif")
    return root


def test_ctc_frames_pair_with_their_segmentation_gold_before_silver(tmp_path):
    from visionsuite.tasks.segment.decode import _read_masks
    from visionsuite.tasks.segment.index import index_pairs

    root = write_ctc(tmp_path / "Fluo-N2DH-GOWT1", {"01": "GT", "02": "ST"})
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(root / "01_GT/SEG/man_seg_002_005.tif")
    index = index_pairs(root)
    pairs = index.splits["train"] + index.splits["val"]
    assert len(pairs) == 6 and index.numbered_masks
    assert {(p.image.parent.name, p.mask.parent.parent.name) for p in pairs} == {
        ("01", "01_GT"), ("02", "02_ST")}
    assert all(p.image.stem[1:] == p.mask.stem[7:] for p in pairs)  # t002 with man_seg002
    assert index.folders == ["Cell Tracking Challenge: 6 frames segmented in 01_GT/SEG/, "
                             "02_ST/SEG/; 6 frames without a segmentation left out; 1 "
                             "annotations of single slices (man_seg_T_Z.tif) left out; TRA/ "
                             "markers not read"]
    (mask,) = _read_masks(pairs[0], binary=True)
    assert set(np.unique(mask)) == {0, 255}
    with pytest.raises(VisionsuiteError, match="Cell Tracking Challenge's test sequences"):
        index_pairs(root, held_out="test")
    every = index_pairs(root, val_fraction=1.0)  # `evaluate RUN --data` on another set
    assert len(every.splits["val"]) == 6 and not every.splits["train"]
    Image.fromarray(np.zeros((40, 40), np.uint16)).save(root / "01_GT/SEG/man_seg009.tif")
    with pytest.raises(VisionsuiteError, match="man_seg009.tif: segments frame 009, which is "
                                               "not in"):
        index_pairs(root)


def test_a_ctc_set_trains_on_its_cells_as_foreground_with_only_data(tmp_path):
    root = write_ctc(tmp_path / "PhC-C2DH-U373", {"01": "GT", "02": "GT"})
    result = invoke("train", "segment", "--data", root, "--output", tmp_path, *TINY_SEGMENT)
    assert result.exit_code == 0, result.output
    run = tmp_path / "segment" / "exp"
    assert (run / "labels.txt").read_text().split() == ["background", "foreground"]
    assert "binary_masks: true" in (run / "config.yaml").read_text()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["pixels"] > 0
