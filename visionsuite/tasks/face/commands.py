"""`visionsuite embed / verify / enroll / identify / gallery` and `data check face`, as a
Python API.

A gallery is a JSON file (format "visionsuite-face-gallery", version 1):

    {"format": "visionsuite-face-gallery", "version": 1,
     "model": {"embedding_size": 128, "image_size": 112, "channels": 3,
               "probe": [...]},                      # the model's embedding of PROBE_IMAGE
     "people": {"alice": {"embeddings": [[...], ...], "images": ["a/1.jpg", ...],
                          "enrolled": "2026-11-22T10:00:00Z"}, ...}}

Each person keeps one unit embedding per enrolled image; a probe's similarity to a person is its
highest cosine similarity to any of them. "probe" identifies the model that made the gallery:
embeddings of different models are not comparable, and the same model's .keras and .tflite
files embed a fixed synthetic image alike (cosine >= SAME_MODEL) while two trained models do
not. Enrolling a person again replaces that person's entry; the file is rewritten whole through
a temporary file and a rename, so it is never left half-written, and under a lock on
GALLERY.lock beside it (POSIX), so that enrollments running at the same time all land.
`visionsuite gallery FILE --remove PERSON` deletes a person's entry the same way.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from visionsuite.errors import VisionsuiteError

GALLERY_FORMAT = "visionsuite-face-gallery"
GALLERY_VERSION = 1
SAME_MODEL = 0.9


@dataclass
class Embedder:
    """A face model ready to embed image files the way it was trained to see them."""

    predictor: object
    source: object
    detect: str  # face_detect mode
    threshold: float | None
    crop_shape: tuple[int, int] | None = None  # of the face crops it was trained on (faces.py)
    framing: object = None  # faces.Framing of those crops' faces: detected faces are cut alike
    window: list[float] | None = None  # data.window of a model trained on 16-bit images

    @property
    def image_size(self) -> int:
        return int(self.predictor.image_size)

    @property
    def channels(self) -> int:
        return int(self.predictor.channels)

    def embed_files(self, paths: list[Path], desc: str = "embedding"):
        """(embeddings of the images in which a face was found, kept indices, skip messages).
        A photo of several faces is warned about: its largest face is the one embedded."""
        from visionsuite.core.progress import warn_some
        from visionsuite.tasks.face.faces import prepare_faces

        faces = prepare_faces(paths, self.image_size, self.channels, self.detect, desc=desc,
                              crop_shape=self.crop_shape, framing=self.framing,
                              window=self.window)
        # A group photo among one person's; LFW's photos often hold a face behind the first.
        warn_some([f"{paths[index]}: {count} faces found; the largest is used (identify "
                   "--every-face takes each)" for index, count in faces.crowded],
                  "{} more photos hold several faces; the largest of each is used")
        if not len(faces.kept):
            return np.zeros((0, 0), np.float32), [], faces.skipped
        return self.embed(faces.images), faces.kept, faces.skipped

    def embed(self, faces: np.ndarray) -> np.ndarray:
        """Unit embeddings of (N, size, size, channels) uint8 face crops."""
        from visionsuite.tasks.face.metrics import unit

        return unit(self.predictor.predict(faces)).astype(np.float32)

    def probe(self) -> np.ndarray:
        from visionsuite.tasks.face.metrics import unit

        return unit(self.predictor.predict(probe_image(self.image_size, self.channels)))[0]


def load_embedder(run: str | Path, detect: bool | None = None, threshold: float | None = None,
                  far: float | None = None) -> Embedder:
    """RUN (a face run folder, its .keras or an exported .tflite) with the face-finding mode
    it was trained with, unless `detect` says otherwise, and the threshold to judge by
    (_operating_threshold)."""
    from visionsuite.config import config_from_dict, read_yaml
    from visionsuite.core.models import load_predictor, require_task, resolve_model
    from visionsuite.tasks.face.faces import Framing

    source = resolve_model(run)
    require_task(source, "face", run)
    mode = "auto"
    if source.run_dir is not None and (source.run_dir / "config.yaml").is_file():
        config = config_from_dict(read_yaml(source.run_dir / "config.yaml"),
                                  str(source.run_dir / "config.yaml"))
        mode = str(config.data.face_detect).lower()
    if detect is not None:
        mode = "true" if detect else "false"
    threshold = _operating_threshold(run, source.settings, threshold, far)
    predictor = load_predictor(source)
    crop_shape = source.settings.get("crop_shape")
    return Embedder(predictor, source, mode, threshold, tuple(crop_shape) if crop_shape else None,
                    Framing.from_json(source.settings.get("crop_framing")),
                    source.settings.get("window"))


def _operating_threshold(run, settings: dict, threshold: float | None,
                         far: float | None) -> float | None:
    """`threshold` (--threshold), else the threshold training measured at the false accept
    rate `far` (--far) on its held-out people, else the model's own (None where it has none)."""
    if threshold is not None and far is not None:
        raise VisionsuiteError("--threshold and --far both choose the threshold; give one")
    if far is not None:
        measured = settings.get("thresholds_at_far") or {}
        if f"{far:g}" not in measured:
            held = ", ".join(measured) if measured else "none (trained before they were saved)"
            raise VisionsuiteError(f"{run}: no threshold measured at FAR {far:g} (measured at: "
                                   f"{held}); pass --threshold")
        return float(measured[f"{far:g}"])
    if threshold is not None:
        if not -1 <= threshold <= 1:
            raise VisionsuiteError(f"--threshold {threshold}: a cosine similarity, between -1 "
                                   "and 1")
        return float(threshold)
    saved = settings.get("threshold")
    return float(saved) if saved is not None else None


def probe_image(size: int, channels: int) -> np.ndarray:
    """A fixed, smooth synthetic image (gradients and blobs in the 0..255 range of faces) whose
    embedding fingerprints a model."""
    ys, xs = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    image = 128 + 60 * np.sin(3 * xs + 1) * np.cos(2 * ys) + 50 * np.exp(
        -((xs - 0.35) ** 2 + (ys - 0.4) ** 2) * 30) - 50 * np.exp(
        -((xs - 0.65) ** 2 + (ys - 0.4) ** 2) * 30)
    image = np.clip(image, 0, 255).astype(np.uint8)
    return np.repeat(image[None, ..., None], channels, axis=-1)


def embed_images(run, inputs, detect: bool | None = None) -> list[dict]:
    from visionsuite.core.images import collect_images

    embedder = load_embedder(run, detect)
    paths = collect_images(inputs)
    embeddings, kept, skipped = embedder.embed_files(paths)
    results = [{"image": str(paths[i]), "embedding": [round(float(v), 6) for v in vector]}
               for i, vector in zip(kept, embeddings)]
    return in_input_order(results, skipped, paths)


def in_input_order(results: list[dict], skipped: list[str], paths: list[Path]) -> list[dict]:
    """`results` and one {"image", "error"} per skip message, in the order of `paths`."""
    position = {str(path): index for index, path in enumerate(paths)}
    results = results + [{"image": skipped_path(message, position), "error": message}
                         for message in skipped]
    return sorted(results, key=lambda result: position.get(result["image"], len(paths)))


def skipped_path(message: str, inputs) -> str:
    """The input (one of `inputs`, path strings) a skip message is about: messages start with
    the path and ': ', and a path may hold ': ' itself, so the longest such start is the one."""
    parts = message.split(": ")
    for count in range(len(parts) - 1, 1, -1):
        if ": ".join(parts[:count]) in inputs:
            return ": ".join(parts[:count])
    return parts[0]


def verify(run, image_a, image_b, detect: bool | None = None,
           threshold: float | None = None, far: float | None = None) -> dict:
    """Same person or not: the cosine similarity of the two faces against the threshold
    (`threshold`, else the one measured at FAR `far`, else the model's)."""
    embedder = load_embedder(run, detect, threshold, far)
    threshold = _verification_threshold(run, embedder)
    paths = _two_image_files(image_a, image_b)
    embeddings, kept, skipped = embedder.embed_files(paths, desc="verifying")
    if len(kept) < 2:
        raise VisionsuiteError(no_face_message(skipped))
    similarity = float(embeddings[0] @ embeddings[1])
    return {"images": [str(p) for p in paths], "same_person": similarity >= threshold,
            "similarity": round(similarity, 6), "threshold": round(float(threshold), 6)}


def verify_every_face(run, image_a, image_b, threshold: float | None = None,
                      far: float | None = None) -> dict:
    """`verify` of photos of several people (is anyone of IMAGE_A in IMAGE_B?): every face
    found in one against every face in the other; the most similar two decide. Adds their
    boxes [x1, y1, x2, y2] (`face_a`, `face_b`), every face's box (`faces_a`, `faces_b`,
    largest first) and each pair's similarity (`similarities`, a row per face of IMAGE_A)."""
    embedder = load_embedder(run, True, threshold, far)
    threshold = _verification_threshold(run, embedder)
    found = list(_every_face(embedder, _two_image_files(image_a, image_b),
                             "verifying every face"))
    errors = [photo.error for photo in found if photo.error]
    if errors:
        raise VisionsuiteError(no_face_message(errors))
    first, second = found
    similarities = first.embeddings @ second.embeddings.T
    a, b = np.unravel_index(int(np.argmax(similarities)), similarities.shape)
    # one rounding for the table and its best: numpy's of float32 values is off by 1e-6
    table = [[round(float(value), 6) for value in row] for row in similarities]
    return {"images": [str(first.path), str(second.path)],
            "same_person": float(similarities[a, b]) >= threshold,
            "similarity": table[a][b], "threshold": round(float(threshold), 6),
            "face_a": first.boxes[a], "face_b": second.boxes[b], "faces_a": first.boxes,
            "faces_b": second.boxes, "similarities": table}


def _verification_threshold(run, embedder: Embedder) -> float:
    if embedder.threshold is None:
        raise VisionsuiteError(f"{run}: the model carries no verification threshold (a run "
                               "folder's inference.json, or an exported file); pass --threshold")
    return embedder.threshold


def _two_image_files(image_a, image_b) -> list[Path]:
    paths = [Path(image_a), Path(image_b)]
    for path in paths:
        require_image_file(path)
    return paths


def require_image_file(path: Path) -> None:
    if path.is_dir():
        raise VisionsuiteError(f"{path}: a folder; this takes one image file")
    if not path.is_file():
        raise VisionsuiteError(f"{path}: no such image file")


def no_face_message(skipped: list[str]) -> str:
    text = "; ".join(skipped)
    if "no face found" in text:
        text += " (pass --no-detect if the images are face crops already)"
    return text


def enroll(run, gallery: str | Path, folders, detect: bool | None = None) -> list[dict]:
    """Add (or replace) one person per folder, named after the folder, in the gallery file.
    The faces are embedded first; the gallery is then re-read, updated and rewritten under a
    lock, so that enrollments running at the same time all land."""
    from visionsuite.core.files import exclusive_lock, writable_file, write_json
    from visionsuite.core.images import collect_images

    gallery = writable_file(gallery, "a gallery file", "--gallery")
    embedder = load_embedder(run, detect)
    read_gallery(gallery, embedder, missing_ok=True)  # a wrong gallery fails before embedding
    people, changes = {}, []
    for folder in folders:
        folder = Path(folder)
        if not folder.is_dir():
            raise VisionsuiteError(f"{folder}: expected a folder of one person's images")
        paths = collect_images([str(folder)])
        _refuse_a_folder_of_people(folder, paths)
        embeddings, kept, skipped = embedder.embed_files(paths, desc=f"enrolling {folder.name}")
        if not kept:
            raise VisionsuiteError(f"{folder}: no usable face ({no_face_message(skipped)})")
        people[folder.name] = {
            "embeddings": [[round(float(v), 6) for v in e] for e in embeddings],
            "images": [str(paths[i]) for i in kept],
            "enrolled": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        changes.append({"person": folder.name, "images": len(kept), "skipped": skipped})
    with exclusive_lock(gallery):
        data = read_gallery(gallery, embedder, missing_ok=True)
        for change in changes:
            change["action"] = "updated" if change["person"] in data["people"] else "added"
        data["people"].update(people)
        write_json(gallery, data)
    return changes


def _refuse_a_folder_of_people(folder: Path, paths: list[Path]) -> None:
    """A folder whose images all lie in two or more subfolders is laid out as a folder of
    people (a dataset's train/): enrolled whole, everyone in it would become one person."""
    parts = [path.relative_to(folder).parts for path in paths]
    inner = sorted({part[0] for part in parts if len(part) > 1})
    if len(inner) >= 2 and all(len(part) > 1 for part in parts):
        shown = ", ".join(f"{name}/" for name in inner[:3]) + (", ..." if len(inner) > 3 else "")
        raise VisionsuiteError(
            f"{folder}: its images are in {len(inner)} subfolders ({shown}), as in a folder "
            f"of people; enroll one folder per person (e.g. {folder}/*)")


def identify(run, image, gallery: str | Path, top_k: int = 5, detect: bool | None = None,
             threshold: float | None = None, far: float | None = None) -> dict:
    """The gallery's people ranked by similarity to the face in `image`; `unknown` when the
    best is below the threshold (`threshold`, else the one measured at FAR `far`, else the
    model's)."""
    path = Path(image)
    require_image_file(path)
    result = identify_images(run, [path], gallery, top_k, detect, threshold, far)[0]
    if "error" in result:
        raise VisionsuiteError(no_face_message([result["error"]]))
    return result


def identify_images(run, inputs, gallery: str | Path, top_k: int = 5,
                    detect: bool | None = None, threshold: float | None = None,
                    far: float | None = None) -> list[dict]:
    """`identify` for each image of `inputs` (files or folders), embedded in batches with the
    model loaded once: one result per image, or {"image", "error"} where no face was found."""
    from visionsuite.core.images import collect_images

    embedder = load_embedder(run, detect, threshold, far)
    people = _gallery_people(gallery, embedder)
    paths = collect_images([str(item) for item in inputs])
    embeddings, kept, skipped = embedder.embed_files(paths, desc="identifying")
    names, scores = _best_similarity_per_person(embeddings, people)
    results = [{"image": str(paths[index]), **_ranked(scores[row], names, embedder.threshold,
                                                        top_k)}
               for row, index in enumerate(kept)]
    return in_input_order(results, skipped, paths)


def identify_every_face(run, inputs, gallery: str | Path, top_k: int = 5,
                        output: str | Path | None = None, threshold: float | None = None,
                        far: float | None = None) -> tuple[list[dict], Path]:
    """`identify` for every face found in each image of `inputs` (group photos): one result
    per image, {"image", "faces": [{"box": [x1, y1, x2, y2], "identity", ...}], "drawn"}
    (largest face first), or {"image", "error"} where none was found or it is unreadable;
    and the folder (`output`, else a new runs/identify/identifyN) where each image is drawn
    with its faces' boxes and names (grey: unknown)."""
    from visionsuite.core.files import RUNS, new_run_dir, unique_stem, writable_folder
    from visionsuite.core.images import collect_images
    from visionsuite.core.plots import save_drawn

    embedder = load_embedder(run, True, threshold, far)
    people = _gallery_people(gallery, embedder)
    paths = collect_images([str(item) for item in inputs],
                           outputs=() if output is None else (output,))
    folder = new_run_dir(Path(RUNS) / "identify", None, "identify") if output is None \
        else writable_folder(Path(output), "the drawn images")
    results, used = [], set()
    for found in _every_face(embedder, paths, "identifying every face"):
        if found.error:
            results.append({"image": str(found.path), "error": found.error})
            continue
        names, scores = _best_similarity_per_person(found.embeddings, people)
        faces = [{"box": box, **_ranked(row, names, embedder.threshold, top_k)}
                 for box, row in zip(found.boxes, scores)]
        drawn = folder / f"{unique_stem(found.path.stem, used)}.png"
        boxes_drawn = [{"box": face["box"], "class": face["identity"],
                        "class_id": names.index(face["identity"])
                        if face["identity"] in names else None,
                        "score": face["candidates"][0]["similarity"]} for face in faces]
        # on the photo as decoded (not decoded again), unless the model reads it grey
        save_drawn(found.photo if found.photo.shape[-1] == 3 else found.path, boxes_drawn,
                   drawn)
        results.append({"image": str(found.path), "faces": faces, "drawn": str(drawn)})
    if output is None and not any("faces" in result for result in results):
        folder.rmdir()  # nothing drawn: no empty run folder left behind
    return results, folder


def embed_every_face(run, inputs) -> list[dict]:
    """The embedding of every face found in each image of `inputs` (group photos, albums to
    cluster): {"image", "faces": [{"box": [x1, y1, x2, y2], "embedding"}]} (largest face
    first), or {"image", "error"} where none was found or it is unreadable."""
    from visionsuite.core.images import collect_images

    embedder = load_embedder(run, detect=True)
    results = []
    for found in _every_face(embedder, collect_images(inputs), "embedding every face"):
        results.append({"image": str(found.path), "error": found.error} if found.error else
                       {"image": str(found.path), "faces": [
                           {"box": box, "embedding": [round(float(v), 6) for v in vector]}
                           for box, vector in zip(found.boxes, found.embeddings)]})
    return results


class PhotoFaces(NamedTuple):
    """The faces of one photo (_every_face), or why it has none."""
    path: Path
    photo: np.ndarray | None = None  # as decoded
    boxes: list | None = None  # [x1, y1, x2, y2] of each face, largest first
    embeddings: np.ndarray | None = None  # their unit embeddings
    error: str | None = None  # unreadable, or no face found


def _every_face(embedder: Embedder, paths: list[Path], desc: str):
    """PhotoFaces of each image, each face cut out as training cut its crops."""
    from visionsuite.core.images import UnreadableImage, read_image
    from visionsuite.core.progress import progress
    from visionsuite.tasks.face.faces import SQUARE, faces_in

    for path in progress(paths, total=len(paths), desc=desc):
        try:
            photo = read_image(path, None, embedder.channels, embedder.window)
        except UnreadableImage as err:
            yield PhotoFaces(path, error=str(err))
            continue
        boxes, crops = faces_in(photo, embedder.image_size, embedder.framing or SQUARE)
        if not boxes:
            yield PhotoFaces(path, error=f"{path}: no face found")
            continue
        yield PhotoFaces(path, photo, [[x, y, x + w, y + h] for x, y, w, h in boxes],
                         embedder.embed(crops))


def _gallery_people(gallery: str | Path, embedder: Embedder) -> dict:
    people = read_gallery(Path(gallery), embedder)["people"]
    if not people:
        raise VisionsuiteError(f"{gallery}: the gallery holds nobody; enroll people first")
    return people


def _ranked(scores: np.ndarray, names: list[str], threshold: float | None, top_k: int) -> dict:
    """One face's identity (`unknown` when even the best is below `threshold`) and its `top_k`
    candidates, from its similarity to each of `names`."""
    order = np.argsort(-scores, kind="stable")[:top_k]
    known = threshold is None or float(scores[order[0]]) >= threshold
    return {"identity": names[order[0]] if known else "unknown", "threshold": threshold,
            "candidates": [{"person": names[i], "similarity": round(float(scores[i]), 6)}
                           for i in order]}


def _best_similarity_per_person(embeddings: np.ndarray, people: dict):
    """(names, (N, people) scores): each face's highest cosine similarity to any enrolled
    image of each person (read_gallery checked that everyone has some), people in name order,
    so that ties rank alike on every run."""
    names = sorted(people)
    if not len(embeddings):
        return names, np.zeros((0, len(names)), np.float32)
    enrolled = [np.asarray(people[name]["embeddings"], np.float32) for name in names]
    starts = np.cumsum([0] + [len(vectors) for vectors in enrolled[:-1]])
    return names, np.maximum.reduceat(embeddings @ np.concatenate(enrolled).T, starts, axis=1)


def read_gallery(path: Path, embedder: Embedder, missing_ok: bool = False) -> dict:
    """The gallery at `path`, checked: its format, and that `embedder`'s model made it."""
    model = {"embedding_size": None, "image_size": embedder.image_size,
             "channels": embedder.channels, "probe": None}
    if not path.exists():
        if not missing_ok:
            raise VisionsuiteError(f"{path}: no such gallery file; create it with "
                                   "`visionsuite enroll`")
        probe = embedder.probe()
        model.update(embedding_size=len(probe), probe=[round(float(v), 6) for v in probe])
        return {"format": GALLERY_FORMAT, "version": GALLERY_VERSION, "model": model,
                "people": {}}
    data = gallery_file(path)
    stored = np.asarray(data["model"]["probe"], np.float64)
    probe = embedder.probe()
    if len(stored) != len(probe):
        raise VisionsuiteError(f"{path}: the gallery holds {len(stored)}-d embeddings of "
                               f"another model; this one makes {len(probe)}-d ones")
    agreement = float(stored @ probe / max(np.linalg.norm(stored), 1e-12))
    if agreement < SAME_MODEL:
        raise VisionsuiteError(f"{path}: the gallery was made by another model (probe "
                               f"similarity {agreement:.2f} < {SAME_MODEL}); enroll the people "
                               "again into a new gallery with this model")
    return data


def gallery_file(path: Path) -> dict:
    """The gallery at `path`, its format checked (not which model made it: read_gallery)."""
    if path.is_dir():
        raise VisionsuiteError(f"{path}: a folder; expected a gallery file made by "
                               "`visionsuite enroll`")
    if not path.is_file():
        raise VisionsuiteError(f"{path}: no such gallery file; create it with "
                               "`visionsuite enroll`")
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise VisionsuiteError(f"{path}: not a readable gallery file ({err}); it was left "
                               "unchanged") from None
    _check_gallery(path, data)
    return data


def gallery_people(gallery: str | Path) -> list[dict]:
    """Who a gallery holds, in name order: the images enrolled of each, and when."""
    data = gallery_file(Path(gallery))
    return [{"person": name, "images": len(person["embeddings"]),
             "enrolled": person.get("enrolled", "")}
            for name, person in sorted(data["people"].items())]


def remove_people(gallery: str | Path, names) -> list[dict]:
    """Remove people (their embeddings and image paths) from a gallery, under its lock and
    through a rename as enroll writes it; the rows of those removed. A name the gallery does
    not hold is an error, and then nobody is removed. No model is needed to forget someone."""
    from visionsuite.core.files import exclusive_lock, write_json

    gallery = Path(gallery)
    gallery_file(gallery)  # a missing or broken gallery fails before the lock file is made
    with exclusive_lock(gallery):
        data = gallery_file(gallery)
        unknown = [name for name in dict.fromkeys(names) if name not in data["people"]]
        if unknown:
            held = sorted(data["people"])
            raise VisionsuiteError(
                f"{gallery}: nobody named '{unknown[0]}' is enrolled (it holds "
                f"{', '.join(held[:10]) + (' ...' if len(held) > 10 else '') or 'nobody'}); "
                "nobody was removed")
        removed = [{"person": name, "images": len(data["people"].pop(name)["embeddings"])}
                   for name in dict.fromkeys(names)]
        write_json(gallery, data)
    return removed


def _check_gallery(path: Path, data) -> None:
    def bad(problem: str):
        raise VisionsuiteError(f"{path}: not a valid gallery file ({problem}); it was left "
                               "unchanged")

    if not isinstance(data, dict) or data.get("format") != GALLERY_FORMAT:
        bad(f"no \"format\": \"{GALLERY_FORMAT}\"")
    if data.get("version") != GALLERY_VERSION:
        bad(f"version {data.get('version')!r}; this visionsuite reads version {GALLERY_VERSION}")
    model, people = data.get("model"), data.get("people")
    if not isinstance(model, dict) or not isinstance(model.get("probe"), list):
        bad("no model probe")
    if not isinstance(people, dict):
        bad("no people")
    size = len(model["probe"])
    for name, person in people.items():
        vectors = person.get("embeddings") if isinstance(person, dict) else None
        if (not isinstance(vectors, list) or not vectors
                or any(not isinstance(v, list) or len(v) != size for v in vectors)):
            bad(f"person '{name}' has no {size}-d embeddings")


def check_face_folders(path: str, held_out: str = "val"):
    """`visionsuite data check face PATH`: identities and images per split, single-image
    identities, unreadable files, and what face finding makes of the images."""
    from visionsuite.core.data import bit_depth_check
    from visionsuite.core.files import held_out_only
    from visionsuite.core.report import table
    from visionsuite.core.splits import test_set_note
    from visionsuite.tasks.base import DataReport
    from visionsuite.tasks.face.data import index_identities, named_few
    from visionsuite.tasks.face.faces import prepare_faces

    test_set = held_out == "test" or held_out_only(path)
    try:
        index = index_identities(path, train=not test_set, held_out=held_out)
    except VisionsuiteError as err:
        return DataReport(f"face dataset {path}", False, str(err))
    note = " (held-out identities by val_fraction 0.2, seed 0)" if index.held_out_by_fraction \
        else ""
    lines, rows, problem = [f"face dataset {index.root}{note}"], [], ""
    lines += [f"  {test_set_note(held_out)}"] if test_set else []
    if index.named_by_file:
        split, items = next((s, i) for s, i in index.splits.items() if i)
        lines.append(f"  people named by the file names ({items[0][0].name}: "
                     f"{index.names[split][items[0][1]]})")
    if index.packed_in is not None:
        lines.append(f"  faces packed in {index.packed_in.name} (RecordIO), unpacked to a "
                     "temporary folder, a person per label")
    if index.listed_in is not None:
        listed = sum(len(items) for items in index.splits.values())
        lines.append(f"  people named in {index.listed_in.relative_to(index.root)} "
                     f"({listed} images)")
    # faces are found in the images as a new run reads them
    window, depth_lines = bit_depth_check([path for items in index.splits.values()
                                           for path, _ in items])
    lines += [f"  {line}" for line in depth_lines]
    for split, items in index.splits.items():
        shown = held_out if split == "val" else split
        faces = prepare_faces([p for p, _ in items], 112, 1, "auto", desc=f"checking {shown}",
                              window=window)
        single = index.single_image_identities(split)
        rows.append({"split": shown, "identities": len(index.names[split]),
                     "images": len(items), "used": len(faces.kept),
                     "single-image identities": len(single)})
        lines += [f"  {shown}: {faces.summary}"]
        if faces.framing is not None and split == "train":  # what training records
            lines.append(f"    faces found in photos are cut out framed as these crops: box "
                         f"centre at {faces.framing.centre_x:.2f}, {faces.framing.centre_y:.2f}"
                         f" of the crop, {faces.framing.width:.2f} of its width")
        lines += [f"    {message}" for message in faces.skipped[:20]]
        if len(faces.skipped) > 20:
            lines.append(f"    ... and {len(faces.skipped) - 20} more images left out")
        if single:
            lines.append(f"    single image (no same-person pair): {named_few(single)}")
        if len({items[i][1] for i in faces.kept}) < 2:
            problem = f"{path}: {shown}: fewer than 2 identities with a usable face"
    lines.insert(1, table(rows))
    lines.append(f"files that are not images (ignored): {len(index.odd_files)}")
    return DataReport("\n".join(lines), not problem, problem)
