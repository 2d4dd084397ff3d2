"""Finding, aligning and cropping faces in photos, with OpenCV's Haar cascades.

Why Haar cascades: they are the face and eye detectors whose files ship inside an installed
package (opencv-contrib-python 4.x, `cv2.data`; 5.0 dropped them and the DNN detectors' weights
never shipped), so nothing downloads at run time. They find frontal faces; a photo where none is
found is reported, never guessed.

`data.face_detect` (and `--no-detect`) choose what happens to a set of images:
- false: the images are face crops already; each is used whole.
- true: each image's largest face is cropped (square, with a margin), turned so that the eyes
  are level when both are found, and resized; images without a face are left out and named.
- auto: the same detection, then a look at the whole set: when the faces found fill the frame
  (the median face box covers at least CROPPED_AREA of its image), the set is of face crops
  (ORL, Yale, LFW crops) and every image is used whole, those where the cascade missed the
  face included; otherwise as `true`.

A model trained on face crops used whole records their size (`crop_shape`, height and width):
in auto mode, images of that size are taken as crops like those it learned from and used whole,
without a search for a face. Otherwise one ORL crop alone, given to `identify`, failed in 19 of
100 test images: the cascade misses faces that fill the frame, and one image is no set to judge.
It also records where the cascade finds their faces (`crop_framing`, Framing): a face found in
a photo is then cut out as those crops frame theirs, not square.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from visionsuite.core.images import read_image
from visionsuite.errors import VisionsuiteError

MODES = ("auto", "true", "false")
CROPPED_AREA = 0.25  # face box / image area from which a set counts as face crops
MARGIN = 0.3  # the crop's side is the face box's side times 1 + MARGIN
MAX_TILT = 30.0  # degrees; steeper "eye pairs" are other features and are not trusted
SMALLEST_FACE = 0.1  # of the shorter side: a portrait's face, not a face in its background
SMALLEST_GROUP_FACE = 1 / 30  # every face of a group photo (10 people side by side: 1/15)


@dataclass(frozen=True)
class Framing:
    """Where a face sits in a crop, as fractions of the crop: its box's centre and width, and
    the crop's height over its width. Detected faces are cut out framed as the crops a model
    learned from: a model trained on a set of face crops used whole (ORL's 112x92, the face
    high in the frame) keeps its crops' framing (measured where the cascade found their
    faces), so that a face found in a photo reaches it as its training faces did. The 81 faces
    found in ORL's 100 test photos, against the crops used whole: ROC AUC 0.942 and TAR 0.763
    at FAR 1e-2 cut out square, 0.951 and 0.844 framed as the crops (benchmarks/face.py)."""

    centre_x: float = 0.5
    centre_y: float = 0.5
    width: float = 1 / (1 + MARGIN)
    aspect: float = 1.0

    def to_json(self) -> dict:
        return {"centre": [round(self.centre_x, 4), round(self.centre_y, 4)],
                "width": round(self.width, 4), "aspect": round(self.aspect, 4)}

    @classmethod
    def from_json(cls, data: dict | None) -> Framing | None:
        if not data:
            return None
        return cls(*(float(v) for v in data["centre"]), float(data["width"]),
                   float(data["aspect"]))


SQUARE = Framing()  # the square of side (1 + MARGIN) x the face box, centred on it
FRAMING_FACES = 5  # faces found in a set of crops from which their framing is measured


@dataclass
class Face:
    """One image's face: the crop resized for the model (None if no face was found), the
    whole image resized, and the face box (x, y, w, h) with its share of the image area."""

    crop: np.ndarray | None
    whole: np.ndarray
    area: float | None
    aligned: bool = False
    shape: tuple[int, int] = (0, 0)  # the image's own height and width
    known_crop: bool = False  # of the crop_shape a model was trained on: used whole
    box: tuple[int, int, int, int] | None = None
    faces: int = 0  # faces found; the largest is the one cropped


@dataclass
class FaceSet:
    images: np.ndarray  # (N, S, S, C) uint8
    kept: list[int]  # indices into the input paths
    skipped: list[str] = field(default_factory=list)
    mode: str = "false"  # what was done: "whole images" or "detected faces"
    summary: str = ""
    typical_shape: tuple[int, int] | None = None  # the most common (height, width) read
    framing: Framing | None = None  # of the faces in a set of whole crops (crop_framing)
    crowded: list[tuple[int, int]] = field(default_factory=list)  # (index, faces) where
    #                                    several faces were found and the largest cropped


def face_mode(setting) -> str:
    text = str(setting).lower()
    if text not in MODES:
        raise VisionsuiteError(f"data.face_detect must be auto, true or false, got '{setting}'")
    return text


_CASCADES = threading.local()


def _cascade(name: str):
    """A cascade classifier from opencv's own data folder, loaded once per thread: one
    classifier used by several threads at once fails inside OpenCV."""
    loaded = _CASCADES.__dict__
    if name not in loaded:
        import cv2

        folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
        path = Path(folder) / name
        if not path.is_file():
            raise VisionsuiteError(
                f"OpenCV's {name} is not installed (opencv-contrib-python 5 dropped the Haar "
                "cascades; visionsuite needs 4.x); or pass --no-detect for face crops")
        loaded[name] = cv2.CascadeClassifier(str(path))
    return loaded[name]


def find_face(gray: np.ndarray):
    """The largest frontal face (x, y, w, h) in a uint8 grayscale image, or None."""
    found = find_faces(gray, SMALLEST_FACE)
    return found[0] if found else None


def find_faces(gray: np.ndarray, smallest: float = SMALLEST_GROUP_FACE) -> list[tuple]:
    """Every frontal face (x, y, w, h) in a uint8 grayscale image whose side is at least
    `smallest` of the image's shorter side (and 20 px), largest first."""
    import cv2

    side = min(gray.shape[:2])
    found = _cascade("haarcascade_frontalface_default.xml").detectMultiScale(
        cv2.equalizeHist(gray), scaleFactor=1.1, minNeighbors=5,
        minSize=(max(20, int(side * smallest)),) * 2)
    boxes = [tuple(int(v) for v in box) for box in found]
    return sorted(boxes, key=lambda box: -box[2] * box[3])


def find_eyes(gray: np.ndarray, box) -> tuple | None:
    """Centres of the left and right eye (image left to right) inside a face box, or None."""
    import cv2

    x, y, w, h = box
    upper = cv2.equalizeHist(np.ascontiguousarray(gray[y:y + int(h * 0.6), x:x + w]))
    found = _cascade("haarcascade_eye.xml").detectMultiScale(
        upper, scaleFactor=1.1, minNeighbors=4, minSize=(max(8, w // 10),) * 2,
        maxSize=(w // 2,) * 2)
    centres = [(x + ex + ew / 2, y + ey + eh / 2, ew * eh) for ex, ey, ew, eh in found]
    left = [c for c in centres if c[0] < x + w / 2]
    right = [c for c in centres if c[0] >= x + w / 2]
    if not left or not right:
        return None
    a, b = max(left, key=lambda c: c[2]), max(right, key=lambda c: c[2])
    tilt = math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))
    return ((a[0], a[1]), (b[0], b[1])) if abs(tilt) <= MAX_TILT else None


def crop_face(image: np.ndarray, box, eyes, size: int, framing: Framing = SQUARE
              ) -> np.ndarray:
    """The face of `box` framed as `framing` says (by default the square around it, grown by
    MARGIN), rotated so that `eyes` are level, resized to size x size (a crop of another
    aspect is squeezed, as training resized such crops whole); pixels beyond the image edge
    repeat the edge."""
    import cv2

    x, y, w, h = box
    centre = np.array([x + w / 2, y + h / 2])
    crop_w = max(w, h) / framing.width
    crop_h = crop_w * framing.aspect
    angle = 0.0
    if eyes is not None:
        (lx, ly), (rx, ry) = eyes
        angle = math.degrees(math.atan2(ry - ly, rx - lx))
    # One affine map: rotate about the face centre, and put it where the framing has it in
    # a crop of the face's own resolution; then area-averaged down to size x size, as the
    # training crops were resized (warpAffine samples, and aliases, where it shrinks).
    width, height = max(size, round(crop_w)), max(size, round(crop_h))
    linear = np.diag([width / crop_w, height / crop_h]) @ cv2.getRotationMatrix2D(
        (0.0, 0.0), angle, 1.0)[:, :2]
    target = np.array([framing.centre_x * width, framing.centre_y * height])
    matrix = np.hstack([linear, (target - linear @ centre)[:, None]])
    out = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    if (width, height) != (size, size):
        out = cv2.resize(out, (size, size), interpolation=cv2.INTER_AREA)
    return out.reshape(size, size, -1)


def measured_framing(faces: list[Face]) -> Framing | None:
    """The median framing of the faces found in a set of crops of one size (at least
    FRAMING_FACES of them), or None."""
    found = [face for face in faces if face.box is not None]
    if len(found) < FRAMING_FACES:
        return None
    x, y, w, h = np.array([face.box for face in found], np.float64).T
    height, width = np.array([face.shape for face in found], np.float64).T
    return Framing(float(np.median((x + w / 2) / width)), float(np.median((y + h / 2) / height)),
                   float(np.median(np.maximum(w, h) / width)), float(np.median(height / width)))


def load_face(path: Path, size: int, channels: int, detect: bool,
              crop_shape: tuple[int, int] | None = None, framing: Framing = SQUARE,
              window: list[float] | None = None) -> Face:
    """Decode `path` once (16-bit through `window`, data.window): its whole image resized,
    and (with `detect`, unless the image has `crop_shape`) its face crop, framed as `framing`
    says."""
    import cv2

    full = read_image(path, None, channels, window)
    shape = tuple(full.shape[:2])
    whole = full if shape == (size, size) else cv2.resize(
        full, (size, size), interpolation=cv2.INTER_AREA).reshape(size, size, channels)
    if crop_shape is not None and shape == tuple(crop_shape):
        return Face(None, whole, None, shape=shape, known_crop=True)
    if not detect:
        return Face(None, whole, None, shape=shape)
    gray = _gray(full, channels)
    found = find_faces(gray, SMALLEST_FACE)
    if not found:
        return Face(None, whole, None, shape=shape)
    box = found[0]
    eyes = find_eyes(gray, box)
    crop = crop_face(full, box, eyes, size, framing)
    return Face(crop, whole, box[2] * box[3] / (gray.shape[0] * gray.shape[1]),
                eyes is not None, shape, box=box, faces=len(found))


def _gray(image: np.ndarray, channels: int) -> np.ndarray:
    """A decoded image as the contiguous uint8 greyscale the cascades search."""
    import cv2

    gray = image[..., 0] if channels == 1 else cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return np.ascontiguousarray(gray)


def faces_in(full: np.ndarray, size: int, framing: Framing = SQUARE
             ) -> tuple[list[tuple], np.ndarray]:
    """Every face found in a decoded photo, (H, W, channels) uint8 as read_image gives it (a
    group photo): their boxes (x, y, w, h, largest first, on the image as shown upright) and
    their crops, aligned, framed as `framing` says and resized, (N, size, size, channels)
    uint8."""
    channels = full.shape[-1]
    gray = _gray(full, channels)
    boxes = find_faces(gray)
    crops = [crop_face(full, box, find_eyes(gray, box), size, framing) for box in boxes]
    return boxes, _stack(crops, size, channels)


def prepare_faces(paths: list[Path], size: int, channels: int, mode: str = "auto",
                  workers: int = 0, desc: str = "faces",
                  crop_shape: tuple[int, int] | None = None,
                  framing: Framing | None = None,
                  window: list[float] | None = None) -> FaceSet:
    """The model inputs of `paths` under `mode` (see the module docstring); in auto mode,
    images of `crop_shape` are used whole. Faces found are cropped as `framing` says (the
    model's training crops', else SQUARE). Unreadable images and, when faces are cropped,
    images without a face are skipped with a message each. A set of face crops used whole
    gives its faces' framing (FaceSet.framing)."""
    from visionsuite.core.data import load_in_parallel

    mode = face_mode(mode)
    detect = mode != "false"
    crop_shape = crop_shape if mode == "auto" else None
    faces, skipped = load_in_parallel(lambda p: load_face(p, size, channels, detect, crop_shape,
                                                          framing or SQUARE, window),
                                      paths, workers,
                                      desc=f"{desc} (finding faces)" if detect else desc)
    readable = [i for i, f in enumerate(faces) if f is not None]
    typical = _most_common([faces[i].shape for i in readable])
    known = [i for i in readable if faces[i].known_crop]
    found = [faces[i] for i in readable if faces[i].area is not None]
    if mode == "false" or (mode == "auto" and found
                           and np.median([f.area for f in found]) >= CROPPED_AREA):
        note = "" if mode == "false" else (
            f"; faces fill the frames (median face box {np.median([f.area for f in found]):.0%}"
            f" of the image, found in {len(found)}/{len(readable) - len(known)}): used as face "
            "crops")
        images = [faces[i].whole for i in readable]
        framing = measured_framing([face for face in found if face.shape == typical])
        return FaceSet(_stack(images, size, channels), readable, skipped, "whole images",
                       f"{len(readable)} whole images{note}", typical, framing)
    if known and len(known) == len(readable):
        return FaceSet(_stack([faces[i].whole for i in known], size, channels), known,
                       skipped, "whole images", f"{len(known)} whole images: the size of the "
                       "face crops the model was trained on", typical)
    kept = [i for i in readable if faces[i].crop is not None or faces[i].known_crop]
    skipped += [f"{paths[i]}: no face found" for i in readable
                if faces[i].crop is None and not faces[i].known_crop]
    aligned = sum(faces[i].aligned for i in kept)
    images = [faces[i].whole if faces[i].known_crop else faces[i].crop for i in kept]
    known_note = f", {len(known)} used whole (the trained crops' size)" if known else ""
    crowded = [(i, faces[i].faces) for i in kept if faces[i].faces > 1]
    return FaceSet(_stack(images, size, channels), kept, skipped, "detected faces",
                   f"{len(kept) - len(known)} faces cropped ({aligned} aligned by the eyes)"
                   f"{known_note}, {len(readable) - len(kept)} images without a face found",
                   typical, crowded=crowded)


def _most_common(shapes: list[tuple[int, int]]) -> tuple[int, int] | None:
    """The (height, width) of at least half of the images, or None."""
    if not shapes:
        return None
    values, counts = np.unique(np.array(shapes), axis=0, return_counts=True)
    if counts.max() * 2 < len(shapes):
        return None
    return tuple(int(v) for v in values[counts.argmax()])


def _stack(images: list[np.ndarray], size: int, channels: int) -> np.ndarray:
    if not images:
        return np.zeros((0, size, size, channels), np.uint8)
    return np.stack(images).astype(np.uint8)
