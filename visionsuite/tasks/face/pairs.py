"""Verification on a list of pairs: LFW's protocol (`visionsuite evaluate RUN --pairs FILE`).

Face benchmarks publish one figure: LFW's pairs.txt holds 10 folds of 300 same-person and 300
different-person pairs, and a model's "LFW accuracy" is the mean over the folds of the
accuracy on each fold at the threshold that is most accurate on the other nine (its standard
error beside it, as LFW's README asks). Lines:

    10  300                  header: folds, and pairs of each kind per fold (optional)
    Abel_Pacheco  1  4       same person: <root>/Abel_Pacheco/Abel_Pacheco_0001.*, ..._0004.*
    Abdel_Madi_Shabneh  1  Dean_Barker  1     two people

(Kaggle's copy of LFW, `pairs.csv`, separates them by commas.) An image number also
finds `<person>/<number>.*` (ORL's `s31/1.pgm`). Lists of one's own pairs are lines of two
image paths under the root and 1 (same person) or 0. Without a header, LFW's layout of folds
(a block of same-person pairs, then one of as many different-person pairs, repeated) is
recognised; any other list is one set, scored without the folds' accuracy.

InsightFace's packed verification sets (`lfw.bin`, `cfp_fp.bin`, `agedb_30.bin`, ... beside
MS1M and CASIA's training images) hold their aligned face crops themselves: a pickle of
(encoded images, one same-person flag per pair), the pair i being images 2i and 2i+1, scored
in 10 folds of consecutive pairs. Such a file is read without running any code it might hold
(_DataOnlyUnpickler), its images decoded from a temporary folder.
"""

from __future__ import annotations

import atexit
import pickle
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.files import inside
from visionsuite.core.images import is_image_file
from visionsuite.errors import VisionsuiteError

SEPARATORS = re.compile(r"[,;\s]+")
NUMBER = re.compile(r"\d+")
SHOWN_MISSING = 3  # images named in an error about missing ones
SHOWN_WRONG = 10  # pairs of each kind in the table of pairs judged wrong
PNG_SIGNATURE = b"\x89PNG"  # a .bin's images are JPEG, or else PNG
PACKED_FOLDS = 10  # InsightFace scores its .bin sets in 10 folds of consecutive pairs


@dataclass
class PairList:
    file: Path
    root: Path  # the folder the images are found under
    paths: list[Path]  # each image once, in the order of first mention
    first: np.ndarray  # index into paths of each pair's images
    second: np.ndarray
    same: np.ndarray  # bool: a same-person pair
    folds: np.ndarray  # fold of each pair, 0..folds-1 (all 0: one set)
    lines: np.ndarray  # each pair's line number in the file (a .bin's: its pair number)
    packed: bool = False  # the images came inside the file (a .bin), not from the root

    @property
    def fold_count(self) -> int:
        return int(self.folds.max()) + 1 if len(self.folds) else 0

    def keep_images(self, kept: list[int]) -> "PairList":
        """The pairs both of whose images are among `kept` (indices into paths), re-indexed
        into the kept images."""
        position = np.full(len(self.paths), -1)
        position[np.asarray(kept, int)] = np.arange(len(kept))
        first, second = position[self.first], position[self.second]
        both = (first >= 0) & (second >= 0)
        return PairList(self.file, self.root, [self.paths[i] for i in kept], first[both],
                        second[both], self.same[both], self.folds[both], self.lines[both],
                        self.packed)

    @property
    def images_source(self) -> str:
        """Where the images are, to show: the file that holds them, else their folder."""
        return str(self.file if self.packed else self.root)


def read_pairs(file: str | Path, root: str | Path | None = None) -> PairList:
    """The pairs of `file` (module docstring), their images under `root` (default: the
    file's folder, or its one subfolder that holds the people, as `lfw_home/lfw_funneled/`).
    Images it names that are missing are one error naming them; no path leaves the root."""
    file = Path(file)
    if not file.is_file():
        raise VisionsuiteError(f"{file}: no such pairs file")
    if file.suffix.lower() == ".bin":
        if root is not None:
            raise VisionsuiteError(f"{file}: an InsightFace .bin holds its images; leave out "
                                   "the images' folder (--data, data.val_pairs_images)")
        return read_packed_pairs(file)
    try:
        lines = file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise VisionsuiteError(f"{file}: not a text file of pairs ({err})") from None
    rows = [(number, SEPARATORS.split(line.strip().strip(",;")))
            for number, line in enumerate(lines, 1)
            if line.strip().strip(",;") and not line.lstrip().startswith("#")]
    header, rows = _header(rows)
    if not rows:
        raise VisionsuiteError(f"{file}: no pairs in it")
    parsed = [_parse(file, number, fields) for number, fields in rows]
    root = _images_root(file, root, parsed)
    finder = _ImageFinder(root)
    paths: dict[Path, int] = {}
    first, second, missing = [], [], []
    for (number, _), (_, a, b) in zip(rows, parsed):
        found = [finder.find(reference) for reference in (a, b)]
        missing += [(number, path) for path in found if isinstance(path, str)]
        if not missing:
            first.append(paths.setdefault(found[0], len(paths)))
            second.append(paths.setdefault(found[1], len(paths)))
    if missing:
        shown = "; ".join(f"line {number}: {name}" for number, name in missing[:SHOWN_MISSING])
        more = f" and {len(missing) - SHOWN_MISSING} more" if len(missing) > SHOWN_MISSING else ""
        raise VisionsuiteError(f"{file}: images it names are not under {root} ({len(missing)} "
                               f"missing: {shown}{more}); pass the images' folder as --data")
    same = np.array([is_same for is_same, _, _ in parsed], bool)
    return PairList(file, root, list(paths), np.array(first, int), np.array(second, int), same,
                    _folds(file, same, header), np.array([number for number, _ in rows], int))


class _DataOnlyUnpickler(pickle.Unpickler):
    """Unpickles lists, tuples, bytes, strings, numbers and booleans only. Any other object
    is built by calling a class or function the pickle names, which is how a pickle from the
    internet runs code: each is refused, but the byte-string codec that Python 3's protocol-2
    pickles of bytes call."""

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):
            import _codecs

            return _codecs.encode
        raise pickle.UnpicklingError(f"it names {module}.{name}")


def read_packed_pairs(file: Path) -> PairList:
    """The pairs of an InsightFace .bin (module docstring), its images written to a temporary
    folder, which is removed when the process ends."""
    try:
        with open(file, "rb") as stream:
            # encoding='bytes': the images of the Python 2 pickles InsightFace shipped
            loaded = _DataOnlyUnpickler(stream, encoding="bytes").load()
    except Exception as err:  # noqa: BLE001  a damaged pickle fails in any of a dozen ways
        raise VisionsuiteError(f"{file}: not an InsightFace .bin of face pairs, only lists "
                               f"of images and booleans are read ({err})") from None
    images, same = _packed_contents(file, loaded)
    folder = Path(tempfile.mkdtemp(prefix="visionsuite-pairs-"))
    atexit.register(shutil.rmtree, folder, True)
    paths = []
    for index, encoded in enumerate(images):
        path = folder / f"{index}{'.png' if encoded.startswith(PNG_SIGNATURE) else '.jpg'}"
        path.write_bytes(encoded)
        paths.append(path)
    count = len(same)
    folds = np.zeros(count, int)
    if count >= 2 * PACKED_FOLDS:  # as scikit-learn's KFold, which InsightFace scores with
        sizes = np.full(PACKED_FOLDS, count // PACKED_FOLDS)
        sizes[:count % PACKED_FOLDS] += 1
        folds = np.repeat(np.arange(PACKED_FOLDS), sizes)
    return PairList(file, folder, paths, np.arange(0, 2 * count, 2), np.arange(1, 2 * count, 2),
                    same, folds, np.arange(1, count + 1), packed=True)


def _packed_contents(file: Path, loaded) -> tuple[list[bytes], np.ndarray]:
    """The encoded images and same-person flags of an unpickled .bin, checked."""
    if not isinstance(loaded, (tuple, list)) or len(loaded) != 2 or \
            not all(isinstance(part, (tuple, list)) for part in loaded):
        raise VisionsuiteError(f"{file}: expected InsightFace's (images, same-person flags) "
                               "pair of lists")
    images, flags = loaded
    if not all(isinstance(image, (bytes, bytearray)) for image in images) or \
            not all(isinstance(flag, (bool, int)) and flag in (0, 1) for flag in flags):
        raise VisionsuiteError(f"{file}: expected encoded images and same-person flags "
                               "(True/False)")
    if not flags or len(images) != 2 * len(flags):
        raise VisionsuiteError(f"{file}: {len(images)} images for {len(flags)} pairs; each "
                               "pair needs two")
    return [bytes(image) for image in images], np.array(flags, bool)


def _header(rows: list) -> tuple[tuple[int, int] | None, list]:
    """LFW's `10 300` (or pairsDevTrain's `1100`) header, if the first line is one, and the
    rows after it; a line of column names (a CSV's) is passed over."""
    if not rows:
        return None, rows
    fields = rows[0][1]
    if all(NUMBER.fullmatch(field) for field in fields) and len(fields) <= 2:
        numbers = [int(field) for field in fields]
        return ((numbers[0], numbers[1]) if len(numbers) == 2 else (1, numbers[0])), rows[1:]
    if not any(NUMBER.fullmatch(field) for field in fields):  # name,imagenum1,imagenum2
        return None, rows[1:]
    return None, rows


def _parse(file: Path, number: int, fields: list[str]):
    """(same person?, image a, image b) of a line; an image is (person, image number) in
    LFW's lines, (path,) in a line naming two images and 1 or 0."""
    numeric = [bool(NUMBER.fullmatch(field)) for field in fields]
    if len(fields) == 3 and numeric == [False, True, True]:
        return True, (fields[0], int(fields[1])), (fields[0], int(fields[2]))
    if len(fields) == 4 and numeric == [False, True, False, True]:
        return False, (fields[0], int(fields[1])), (fields[2], int(fields[3]))
    if len(fields) == 3 and fields[2] in ("0", "1"):
        return fields[2] == "1", (fields[0],), (fields[1],)
    raise VisionsuiteError(
        f"{file}, line {number}: expected 'person n1 n2' or 'person1 n1 person2 n2' (LFW's "
        f"pairs) or 'image_a image_b 1|0'; got {' '.join(fields)!r}")


def _images_root(file: Path, root, parsed) -> Path:
    """`root`, else the pairs file's folder, or the one folder in it that holds the first
    pair's person (LFW's pairs.txt lies beside `lfw/`)."""
    if root is not None:
        root = Path(root)
        if not root.is_dir():
            raise VisionsuiteError(f"{root}: no such folder (the pairs' images)")
        return root
    _, (name, *number), _ = parsed[0]
    here = file.parent
    if not number or (here / name).is_dir():  # a listed path: under the file's folder
        return here
    holding = [folder for folder in sorted(here.iterdir())
               if folder.is_dir() and (folder / name).is_dir()]
    return holding[0] if len(holding) == 1 else here


class _ImageFinder:
    """An image of a pair under the root: LFW's `<person>/<person>_<number:04d>.*`, or
    `<person>/<number>.*`; a listed path as it is. A string (what is missing) when absent."""

    def __init__(self, root: Path):
        self.root = root
        self.folders: dict[str, dict[str, Path]] = {}

    def find(self, reference: tuple) -> Path | str:
        if len(reference) == 1:
            path = inside(self.root, reference[0])
            return path if path.is_file() else reference[0]
        name, number = reference
        files = self._files(name)
        for stem in (f"{name}_{number:04d}", str(number)):
            if stem in files:
                return files[stem]
        return f"{name}/{name}_{number:04d}.*"

    def _files(self, person: str) -> dict[str, Path]:
        if person not in self.folders:
            folder = inside(self.root, person)
            self.folders[person] = {path.stem: path for path in sorted(folder.iterdir())
                                    if path.is_file() and is_image_file(path)} \
                if folder.is_dir() else {}
        return self.folders[person]


def _folds(file: Path, same: np.ndarray, header: tuple[int, int] | None) -> np.ndarray:
    """The fold of each pair: the header's (folds of `per_fold` same-person pairs, then as
    many different-person ones), else LFW's blocked layout where the list has it, else one."""
    if header is not None:
        folds, per_fold = header
        if folds >= 2:
            if len(same) != 2 * folds * per_fold:
                raise VisionsuiteError(f"{file}: its header says {folds} folds of {per_fold} "
                                       f"same- and {per_fold} different-person pairs, "
                                       f"{2 * folds * per_fold} lines; it holds {len(same)}")
            return np.repeat(np.arange(folds), 2 * per_fold)
        return np.zeros(len(same), int)
    starts = np.flatnonzero(same[1:] & ~same[:-1]) + 1  # a same pair after a different one
    blocks = np.split(same, starts)
    equal = all(block.sum() * 2 == len(block) and block[:len(block) // 2].all()
                for block in blocks)
    if len(blocks) >= 2 and equal and len({len(block) for block in blocks}) == 1:
        return np.repeat(np.arange(len(blocks)), len(blocks[0]))
    return np.zeros(len(same), int)


def pair_metrics(embeddings: np.ndarray, pairs: PairList, threshold: float | None) -> dict:
    """Verification of `pairs` from the unit `embeddings` of pairs.paths: ROC AUC, EER, TAR at
    FAR 1e-2 and 1e-3, accuracy at the model's threshold and, for a list of folds, LFW's
    accuracy (the mean over folds, each at the threshold most accurate on the others)."""
    from visionsuite.tasks.face.metrics import (equal_error_rate, far_operating_points,
                                                roc_auc, roc_points)

    scores = pair_scores(embeddings, pairs)
    positives, negatives = _both_kinds(scores, pairs)
    metrics = {"roc_auc": roc_auc(positives, negatives),
               "eer": equal_error_rate(positives, negatives)}
    metrics.update(far_operating_points(positives, negatives))
    if threshold is not None:
        metrics["accuracy"] = float(((scores >= threshold) == pairs.same).mean())
        metrics["threshold"] = float(threshold)
    cut = threshold if threshold is not None else most_accurate_threshold(scores, pairs.same)
    metrics["judged_at"] = (f"the model's threshold {cut:.4f}" if threshold is not None else
                            f"{cut:.4f}, the most accurate threshold on these pairs")
    metrics["false_rejects"] = int((positives < cut).sum())
    metrics["false_accepts"] = int((negatives >= cut).sum())
    metrics["wrong_pairs"] = wrong_pairs(scores, pairs, cut)
    if pairs.fold_count >= 2:
        folds = cross_validated_accuracy(scores, pairs.same, pairs.folds)
        accuracies = np.array([fold["accuracy"] for fold in folds])
        metrics["cv_accuracy"] = float(accuracies.mean())
        metrics["cv_accuracy_se"] = float(accuracies.std(ddof=1) / np.sqrt(len(accuracies)))
        metrics["folds"] = folds
    metrics.update(pairs=int(len(scores)), same_pairs=int(len(positives)),
                   different_pairs=int(len(negatives)), images=len(pairs.paths))
    metrics["roc"] = roc_points(positives, negatives)
    return metrics


def pair_scores(embeddings: np.ndarray, pairs: PairList) -> np.ndarray:
    """The cosine similarity of each pair, from the unit `embeddings` of pairs.paths."""
    return np.einsum("ij,ij->i", embeddings[pairs.first], embeddings[pairs.second])


def _both_kinds(scores: np.ndarray, pairs: PairList) -> tuple[np.ndarray, np.ndarray]:
    """The scores of the same-person pairs and of the others: an error if either is none."""
    positives, negatives = scores[pairs.same], scores[~pairs.same]
    if not len(positives) or not len(negatives):
        raise VisionsuiteError(f"{pairs.file}: scoring needs same- and different-person pairs "
                               "with a face found in both images")
    return positives, negatives


def chosen_pairs_metrics(embeddings: np.ndarray, pairs: PairList,
                         threshold: float | None = None) -> dict:
    """pair_metrics of a val split of pairs (data.val_pairs), with what face_metrics adds for a
    split of people: `best_threshold` (of the highest balanced accuracy, which training saves)
    and the threshold used: the model's, else that one."""
    from visionsuite.tasks.face.metrics import best_threshold, unit

    vectors = unit(embeddings)
    best = best_threshold(*_both_kinds(pair_scores(vectors, pairs), pairs))
    metrics = pair_metrics(vectors, pairs, best if threshold is None else threshold)
    return {**metrics, "best_threshold": best,
            "threshold_source": "the model's" if threshold is not None else "best on this data"}


def wrong_pairs(scores: np.ndarray, pairs: PairList, cut: float,
                shown: int = SHOWN_WRONG) -> list[dict]:
    """The pairs judged wrong at `cut`, worst first: the `shown` same-person pairs of the
    lowest similarity below it, then the `shown` different-person pairs of the highest at or
    above it, each with its line in the file and its images under the root, to look at."""
    missed = np.flatnonzero(pairs.same & (scores < cut))
    accepted = np.flatnonzero(~pairs.same & (scores >= cut))
    chosen = [*missed[np.argsort(scores[missed], kind="stable")][:shown],
              *accepted[np.argsort(-scores[accepted], kind="stable")][:shown]]

    root = pairs.root.resolve()  # the images' paths are resolved (files.inside)

    def name(index: int) -> str:
        path = pairs.paths[index]
        if pairs.packed:  # the image's number in the .bin (from 0), as InsightFace counts
            return f"{pairs.file.name}[{path.stem}]"
        return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)

    number = "pair_number" if pairs.packed else "line"
    return [{number: int(pairs.lines[i]), "pair": "same" if pairs.same[i] else "different",
             "similarity": round(float(scores[i]), 4), "image_a": name(pairs.first[i]),
             "image_b": name(pairs.second[i])} for i in chosen]


def cross_validated_accuracy(scores: np.ndarray, same: np.ndarray,
                             folds: np.ndarray) -> list[dict]:
    """For each fold, the threshold most accurate on the other folds' pairs, and the accuracy
    of that threshold on this fold's (LFW's protocol)."""
    rows = []
    for fold in range(int(folds.max()) + 1):
        mine = folds == fold
        cut = most_accurate_threshold(scores[~mine], same[~mine])
        rows.append({"fold": fold + 1, "pairs": int(mine.sum()), "threshold": round(cut, 6),
                     "accuracy": float(((scores[mine] >= cut) == same[mine]).mean())})
    return rows


def most_accurate_threshold(scores: np.ndarray, same: np.ndarray) -> float:
    """The threshold (accept at or above it) of the fewest wrong pairs, halfway between the
    two scores it falls between; the highest such cut where several tie."""
    order = np.argsort(-scores, kind="stable")
    ordered, positive = scores[order], same[order]
    # Accepting the first k pairs: wrong = positives refused + negatives accepted.
    accepted_negatives = np.concatenate([[0], np.cumsum(~positive)])
    refused_positives = positive.sum() - np.concatenate([[0], np.cumsum(positive)])
    wrong = accepted_negatives + refused_positives
    # Only cuts between distinct scores can be thresholds.
    valid = np.concatenate([[True], ordered[1:] < ordered[:-1], [True]])
    wrong = np.where(valid, wrong, np.iinfo(np.int64).max)
    k = int(np.argmin(wrong))
    if k == 0:
        return float(ordered[0] + 1e-3)
    if k == len(ordered):
        return float(ordered[-1] - 1e-3)
    return float((ordered[k - 1] + ordered[k]) / 2)


def evaluate_pairs(run, pairs_file, data=None, json_path=None, detect=None,
                   plots=None) -> dict:
    """RUN's verification of the pairs of `pairs_file` (images under `data`), each image's
    face found and cut out as `verify` does; pairs with an image without a face are left
    out and counted. `plots`: a folder for the ROC curve, `<pairs file's stem>_roc.png`."""
    from visionsuite.core.evaluate import draw_plots
    from visionsuite.core.files import writable_file, writable_folder, write_json
    from visionsuite.core.progress import warn_some
    from visionsuite.tasks import get_task
    from visionsuite.tasks.face.commands import load_embedder

    if json_path:
        writable_file(json_path, "the metrics file", "--json")
    if plots:
        writable_folder(Path(plots), "the plots", "--plots")
    embedder = load_embedder(run, detect)
    pairs = read_pairs(pairs_file, data)
    embeddings, kept, skipped = embedder.embed_files(pairs.paths)
    warn_some([f"{message}; its pairs left out" for message in skipped],
              "{} more photos without a face; their pairs left out")
    scored = pairs.keep_images(kept)
    metrics = pair_metrics(embeddings, scored, embedder.threshold)
    result = {"model": str(embedder.source.path), "format": embedder.source.kind,
              "task": "face", "data": pairs.images_source,
              "split": f"pairs {pairs.file.name}",
              "pairs_file": str(pairs.file), **metrics,
              "pairs_left_out": int(len(pairs.same) - len(scored.same))}
    if plots:
        result["plots"] = [str(path) for path in draw_plots(
            get_task("face"), Path(plots), f"{pairs.file.stem}_", metrics)]
    if json_path:
        write_json(json_path, result)
    return result
