"""DICOM, NIfTI, NRRD and MetaImage files as 2D slices, and label volumes written back in the
input's geometry.

- DICOM (pydicom): one file holds one slice, or several frames. Stored values go through the
  modality LUT (RescaleSlope/Intercept: Hounsfield units for CT), then through an intensity
  window to 0..255. The window is `data.window` when set, else the file's own WindowCenter/
  WindowWidth, else the file's 0.5-99.5 percentile range. MONOCHROME1 is inverted after
  windowing so that, as for MONOCHROME2, bright means high values. Colour (RGB/YBR) files skip
  windowing.
- NIfTI (nibabel): a 3-D volume is read as its slices along the third voxel axis; intensities
  are scaled by the header's slope/intercept, and windowed as above, the header's
  cal_min/cal_max being the file's own window. A 4-D volume (the Medical Segmentation
  Decathlon's multi-modal MRI: FLAIR, T1, T1gd, T2 along the fourth axis) is one image of as
  many channels, each windowed on its own: MRI intensities have no common scale. Slice k
  becomes the image `flipud(volume[:, :, k].T)` (rows along the second voxel axis, reversed;
  columns along the first): upright for the usual RAS/LAS storage. `labels_to_volume` undoes
  that exactly and writes the mask with the input's affine and header, so it overlays the
  input in any viewer. NRRD and MetaImage volumes (3D Slicer's .nrrd and .seg.nrrd, the
  challenges' .mha) are read through SimpleITK into the same NIfTI image (their LPS+ geometry
  turned to RAS+), and so take the same road, their predictions written as NIfTI.
One percentile range per file keeps every slice of a volume windowed alike; a DICOM series
(one file per slice) should set data.window so that its slices are, too.
- A DICOM series (single-frame files sharing a SeriesInstanceUID, as scanners write them) is
  stacked by `stack_dicom_series` into one volume: slices ordered along the normal of their
  ImageOrientationPatient, the affine built from ImagePositionPatient and PixelSpacing (DICOM
  PS3.3 C.7.6.2.1.1; patient LPS+ turned to NIfTI's RAS+), so that `series_labels_to_nifti`
  writes a label volume that overlays the series in 3D Slicer or ITK-SNAP. Its slices are
  stored as NIfTI slices are read here (rows bottom-up), so it reads back upright, too.
- A folder that holds one such series is an image too (`images/case1/` of a training set):
  its slices in order, each file windowed on its own as a single file is; a NIfTI label
  volume paired with it (`masks/case1.nii.gz`, as 3D Slicer or ITK-SNAP save a segmentation)
  is resampled onto the series' voxels through the two affines (`label_slices_for`), so a
  label volume stored in another orientation still marks the right pixels; so is a NIfTI
  label volume of another size than its NIfTI image.
- NumPy, HDF5 and MATLAB arrays (core/arrays.py) take the same road as slices without a
  geometry: an array's own window is its dtype's (uint8, or floats within 0..1), else the
  file's percentile range.
- `labels_to_dicom_seg` writes the masks of DICOM images as a DICOM Segmentation (SEG,
  highdicom) that references them, as PACS and DICOM viewers (OHIF, 3D Slicer) load results.
"""

from __future__ import annotations

import functools
import warnings
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from visionsuite.core.arrays import (ARRAY_SUFFIXES, UnreadableArray, array_format,
                                     is_array_file, numbered_layers, one_hot_classes,
                                     own_window, read_array, read_instances, slices_shape)
from visionsuite.core.files import atomic_path
from visionsuite.core.images import (IMAGE_EXTENSIONS, INSTANCE_HINT, UnreadableImage,
                                     content_kind, object_numbers, window_bounds)
from visionsuite.core.percentiles import percentiles
from visionsuite.core.progress import report_part
from visionsuite.errors import VisionsuiteError

DICOM_SUFFIXES = (".dcm", ".dicom")
NIFTI_SUFFIXES = (".nii", ".nii.gz")
# Volumes NIfTI's pipeline takes through SimpleITK: NRRD (3D Slicer's own, its segmentations
# .seg.nrrd) and MetaImage (.mha, .mhd: grand-challenge.org's and many MICCAI challenges').
ITK_SUFFIXES = (".nrrd", ".nhdr", ".mha", ".mhd")
VOLUME_SUFFIXES = NIFTI_SUFFIXES + ITK_SUFFIXES
# a file's stem is its name without both (Synapse's test volumes are case0001.npy.h5)
DOUBLE_SUFFIXES = (".nii.gz", ".seg.nrrd", ".npy.h5")
# arrays (core/arrays.py) are read as slices, as volumes are
MEDICAL_SUFFIXES = DICOM_SUFFIXES + VOLUME_SUFFIXES + ARRAY_SUFFIXES
PERCENTILES = (0.5, 99.5)  # the window when neither the config nor the file gives one


class UnreadableMedical(UnreadableImage):
    """A DICOM or NIfTI file that cannot be decoded (callers skip and count it, as images)."""


def is_medical_file(path: Path) -> bool:
    """DICOM, NIfTI or an array file (core/arrays.py) by extension, or a DICOM file (by its
    "DICM" marker) whose extension names no image format: scanners often write `IM0001` or
    `*.IMA`; or a folder of one DICOM series (`series_folder`)."""
    if path.is_dir():
        return series_folder(path) is not None
    name = path.name.lower()
    if name.endswith(MEDICAL_SUFFIXES):
        return True
    return path.suffix.lower() not in IMAGE_EXTENSIONS and content_kind(path) == "dicom"


def is_dicom_file(path: Path) -> bool:
    """A medical file that is neither a volume nor an array: DICOM, by name or marker."""
    return is_medical_file(path) and not is_volume(path) and not is_array_file(path)


def is_volume(path: Path) -> bool:
    """NIfTI, NRRD or MetaImage by extension: a volume read as its slices."""
    return path.name.lower().endswith(VOLUME_SUFFIXES)


def file_stem(path: Path) -> str:
    """The name without its extension; `.nii.gz` and Slicer's `.seg.nrrd` count as one. A
    name that ends in no image or medical extension is its own stem: `IM0001.320` and
    `IM0001.321` are two slices of a series (and their masks `IM0001.320.png`, ...), not one
    stem twice."""
    double = next((end for end in DOUBLE_SUFFIXES if path.name.lower().endswith(end)), None)
    if double:
        return path.name[:-len(double)]
    known = path.suffix.lower() in IMAGE_EXTENSIONS or path.suffix.lower() in MEDICAL_SUFFIXES
    return path.stem if known else path.name


@dataclass
class Slices:
    values: np.ndarray  # (S, H, W) float32 modality values, (S, H, W, C) of a 4-D NIfTI's C
    #                     volumes, or (S, H, W, 3) colour display values in 0..1; an array
    #                     file's image in its own type, maybe mapped (windowed as float32)
    window: tuple[float, float] | None  # the file's own (center, width)
    kind: str  # for reports: "DICOM CT", "NIfTI", ...
    # voxel size in mm along x (columns), y (rows), z (slices): NIfTI's; a single-frame
    # DICOM's PixelSpacing, z 0 (no other slice); read from headers only
    spacing: tuple[float, float, float] | None = None
    size: tuple[int, int] | None = None  # (width, height) of a slice, read from the header
    count: int = 1  # slices, read from the header
    channels: int = 1  # volumes of a 4-D NIfTI (MRI modalities), each a channel of the image
    colour: bool = False  # RGB/YBR DICOM: display values, no windowing


def read_slices(path: str | Path, channels: int = 3,
                window: list[float] | tuple[float, float] | None = None) -> list[np.ndarray]:
    """The file's slices as uint8 (H, W, channels) images, windowed as the module says; a
    series folder's, a file at a time. Grey slices are repeated to `channels`; a 4-D NIfTI's
    volumes are its channels, and must be `channels` many."""
    path = Path(path)
    if path.is_dir():
        return read_series_slices(_series_of_folder(path), channels, window)
    slices = _read(path)
    if slices.colour:  # already display values
        images = _to_8bit_colour(slices.values)
        if channels == 1:
            images = np.round(images.astype(np.float32) @ [0.299, 0.587, 0.114])[..., None]
        return [image.astype(np.uint8) for image in images]
    if slices.values.ndim == 4:
        if slices.channels != channels:
            raise UnreadableMedical(f"{path}: {slices.channels} channels (the volumes of a 4-D "
                                    f"NIfTI), but the model takes {channels}")
        if not channels_windowed_apart(slices, window):  # one window for all: at once
            return list(_windowed(slices.values, slices, window))
        return list(np.stack([_windowed(slices.values[..., channel], slices, window)
                              for channel in range(slices.channels)], axis=-1))
    grey = _windowed(slices.values, slices, window)
    return [np.repeat(image[..., None], channels, axis=-1) for image in grey]


def channels_windowed_apart(slices: Slices, window=None) -> bool:
    """Whether each channel of the file's images goes through a window of its own (MRI
    modalities share no intensity scale): where neither `window` (data.window) nor the file
    sets one for all (a NIfTI's cal_min/cal_max; an array file's 8-bit or 0..1 values)."""
    return slices.channels > 1 and not slices.colour and not window and slices.window is None


def separate_images(path: str | Path) -> bool:
    """Whether a file's slices are separate images rather than a volume's: an array file's
    stack of 3-channel images (PanNuke's RGB tiles; no scanner stores a volume in colour).
    From the header."""
    path = Path(path)
    if not is_array_file(path):
        return False
    header = _read(path, header_only=True)
    return header.count > 1 and header.channels == 3


def file_channels_windowed_apart(path: str | Path, window=None) -> bool:
    """channels_windowed_apart of a file (or a series folder's first), for `data check`:
    from its header, but for an array file, whose own window its values decide."""
    path = Path(path)
    if path.is_dir():
        path = _series_of_folder(path).paths[0]
    return channels_windowed_apart(_read(path, header_only=not is_array_file(path)), window)


# Values windowed at a time, as float32: a whole PanNuke fold's would be 2 GB, and each new
# page of memory costs (2 GB took 12 s here to be written the first time, 0.6 s to be read).
# Steps of 4 MB windowed a 300x512x512 CT volume in 0.08 s here, of 32 MB in 0.3 s: smaller
# temporaries stay in the caches, and the allocator reuses them.
WINDOWED_BYTES = 4 << 20


def _windowed(values: np.ndarray, slices: Slices, window) -> np.ndarray:
    """Modality values through the window (see the module), as uint8; MONOCHROME1 inverted.
    A few slices at a time: temporaries of a whole stack would cost more than the windowing."""
    center, width = _window(values, slices.window, window)
    low, scale = center - width / 2, 255.0 / width
    grey = np.empty(values.shape, np.uint8)
    step = _slices_per_step(values)
    for start in range(0, len(values), step):
        part = values[start:start + step]
        if part.dtype != np.float32 or not np.isfinite(part).all():  # else no copy needed
            part = _finite_float32(part)
        grey[start:start + step] = np.clip(np.round((part - low) * scale), 0, 255)
        report_part("images", min(start + step, len(values)), len(values))
    return np.subtract(255, grey, out=grey) if slices.kind.endswith("MONOCHROME1") else grey


def read_label_slices(path: str | Path, binary: bool = False) -> list[np.ndarray]:
    """A label file's slices as (H, W) uint8 raw values (no windowing): integer labels only;
    `binary`: 0 where the value is 0, else 255."""
    path = Path(path)
    slices = _read(path, labels=True)
    if slices.values.ndim == 4:
        found = "colour mask" if slices.colour else \
            f"{slices.channels} volumes (a 4-D NIfTI)" if is_volume(path) else \
            f"{slices.channels} channels, not class layers (of 0 and 1, or numbering " \
            "their objects without overlapping)"
        raise UnreadableMedical(f"{path}: {found}; expected one channel of class indices")
    return list(_label_values(slices.values, path, binary))


def read_label_values(path: str | Path) -> np.ndarray | None:
    """A label file's values as stored, (S, H, W) (read_object_slices checks them); None
    for several channels or colour."""
    slices = _read(Path(path), labels=True)
    return None if slices.values.ndim == 4 else slices.values


def read_instance_slices(path: str | Path, name: str) -> list[np.ndarray] | None:
    """The numbers of the nuclei of a HoVer-Net label file whose mask is their classes: its
    inst_map `name` (instances_beside_classes), a slice at a time (object_numbers); None
    where they are no whole numbers."""
    try:
        numbers = [object_numbers(values) for values in read_instances(Path(path), name)]
    except UnreadableArray as err:
        raise UnreadableMedical(str(err)) from None
    return None if any(values is None for values in numbers) else numbers


def read_numbered_layers(path: str | Path, binary: bool = False
                         ) -> tuple[list[np.ndarray], list[np.ndarray] | None] | None:
    """An array file's class layers, from one pass over them: its slices' classes, as
    read_label_slices reads them, and where the layers number their objects (PanNuke's
    masks), the objects' numbers (numbered_layers); None where the file holds no layers."""
    path = Path(path)
    try:
        if not is_array_file(path) or len(slices_shape(path, labels=True)) != 4:
            return None
        classes, numbers = numbered_layers(read_array(path, labels=True))
    except UnreadableArray as err:
        raise UnreadableMedical(str(err)) from None
    if classes is None:
        return None  # read_label_slices says why
    return list(_label_values(classes, path, binary)), \
        None if numbers is None else list(numbers)


def read_series_slices(series: DicomSeries, channels: int = 3,
                       window: list[float] | tuple[float, float] | None = None
                       ) -> list[np.ndarray]:
    """A series' slices in its order: each file's one image, windowed as a single file is
    (so that a series segments as its slices were trained)."""
    return [image for path in series.paths for image in read_slices(path, channels, window)]


def _label_values(values: np.ndarray, path: Path, binary: bool) -> np.ndarray:
    if binary:
        return np.where(values != 0, 255, 0).astype(np.uint8)
    if not np.array_equal(values, np.round(values)) or values.min(initial=0) < 0 \
            or values.max(initial=0) > 255:
        raise UnreadableMedical(f"{path}: mask values must be whole numbers 0..255 "
                                f"(found {values.min():g}..{values.max():g}; {INSTANCE_HINT})")
    return values.astype(np.uint8)


def read_header(path: str | Path) -> Slices:
    """The file's header only: its kind, own window, slice size and slice count (no values);
    of a series folder, its first file's, with the series' slice count."""
    path = Path(path)
    if path.is_dir():
        series = _series_of_folder(path)
        first = _read(series.paths[0], header_only=True)
        return Slices(first.values, first.window, f"{first.kind} series", size=first.size,
                      count=len(series.paths))
    return _read(path, header_only=True)


def describe(path: str | Path) -> str:
    """What the file is, for `data check`: 'DICOM CT', 'NIfTI', ..."""
    return read_header(path).kind


def voxel_volume_mm3(path: str | Path) -> float | None:
    """Volume of one voxel of a NIfTI file in mm^3 (None for other files)."""
    path = Path(path)
    return float(np.prod(voxel_spacing(path))) if is_volume(path) else None


def voxel_spacing(path: str | Path) -> tuple[float, float, float] | None:
    """The voxel size in mm of the slices read_slices gives: (between slices, between rows,
    between columns); None where the file does not say (multi-frame DICOM, files of other
    formats). A single slice has no other to be apart from: its first value is 0 (DICOM)."""
    path = Path(path)
    if path.is_dir():
        affine = _series_of_folder(path).affine[:3, :3]
        column, row = np.linalg.norm(affine[:, :2], axis=0)
        # across the slices along their normal, also where a tilted gantry shears them
        return float(abs(np.linalg.det(affine)) / (row * column)), float(row), float(column)
    spacing = _read(path, header_only=True).spacing if is_medical_file(path) else None
    if spacing is None:
        return None
    x, y, z = spacing  # rows run along y, columns along x
    return z, y, x


def labels_to_dicom_seg(labels: list[np.ndarray], sources: list[Path], names: list[str],
                        output: str | Path, model: str) -> Path:
    """A binary DICOM Segmentation of the class indices `labels` of the frames of the DICOM
    files `sources` (a series' files in its order, or one file's frames): one segment per
    class but 0, labelled with its name, each frame referencing the image it segments.
    Written atomically, and only if highdicom reads it back (ValueError otherwise)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from visionsuite import __version__

    images = [pydicom.dcmread(path) for path in sources]
    algorithm = hd.AlgorithmIdentificationSequence(
        name="visionsuite", version=__version__, family=codes.cid7162.ArtificialIntelligence)
    # Class names are free text: each segment gets the generic category and type 3D Slicer
    # gives a new segment ("Tissue"), and its label names it.
    segments = [hd.seg.SegmentDescription(
        segment_number=number, segment_label=name[:64],
        segmented_property_category=codes.SCT.Tissue, segmented_property_type=codes.SCT.Tissue,
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
        algorithm_identification=algorithm) for number, name in enumerate(names[1:], 1)]
    with warnings.catch_warnings():  # highdicom's, on the sources' patient names
        warnings.filterwarnings("ignore", module="highdicom")
        segmentation = hd.seg.Segmentation(
            source_images=images, pixel_array=np.stack(labels).astype(np.uint8),
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=segments, series_instance_uid=hd.UID(),
            series_number=1000 + int(images[0].get("SeriesNumber", 0) or 0),
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="visionsuite",
            manufacturer_model_name=model[-64:], software_versions=__version__,
            device_serial_number="0", series_description="visionsuite segmentation")
    output = Path(output)
    with atomic_path(output, suffix=".dcm") as tmp:
        segmentation.save_as(tmp)
        try:  # highdicom writes some SEGs it cannot read (frames without pixel spacing)
            hd.seg.segread(tmp)
        except (AttributeError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"the SEG written does not read back ({err})") from None
    return output


def volume_suffix(reference: str | Path) -> str:
    """The extension of a volume's predictions: its own format's, so that they open over it
    where it came from (3D Slicer's NRRD as .nrrd, MetaImage as one .mha file), NIfTI's
    .nii.gz."""
    return {"NIfTI": ".nii.gz", "NRRD": ".nrrd"}.get(volume_format(Path(reference)), ".mha")


def labels_to_volume(labels: list[np.ndarray], reference: str | Path, output: str | Path,
                     class_count: int) -> Path:
    """Write per-slice class indices as a label volume with `reference`'s shape and geometry
    (written atomically): NIfTI with its affine and header (the extension picks .nii or
    .nii.gz), or NRRD or MetaImage with its origin, spacing and directions
    (volume_suffix)."""
    return _save_volume(_volume_like(labels, reference, np.uint8), Path(output), np.uint8,
                        max(class_count - 1, 1), Path(reference))


def probabilities_to_volume(maps: list[np.ndarray], reference: str | Path,
                            output: str | Path) -> Path:
    """Write one class's per-slice probabilities (0..1) as a float32 volume with
    `reference`'s shape and geometry (as labels_to_volume)."""
    return _save_volume(_volume_like(maps, reference, np.float32), Path(output), np.float32, 1,
                        Path(reference))


def _volume_like(slices: list[np.ndarray], reference: str | Path, dtype):
    """Per-slice arrays as a NIfTI image of `reference`'s shape, affine and header."""
    reference = Path(reference)
    image = _load_volume(reference)
    volume = np.stack([np.flipud(item).T for item in slices], axis=2).astype(dtype)
    shape = image.shape[:3] if len(image.shape) >= 3 else image.shape + (1,)
    if volume.shape != tuple(shape):
        raise VisionsuiteError(f"{reference}: predictions of shape {volume.shape} do not fit the "
                               f"volume's {tuple(shape)}")
    return type(image)(volume.reshape(image.shape[:3]), image.affine, image.header.copy())


@dataclass
class DicomSeries:
    """Single-frame DICOM files of one series that stack into a regular volume."""
    name: str  # for output files: the series' folder, with its SeriesNumber where needed
    uid: str
    paths: list[Path]  # in slice order, along the normal of the slices
    affine: np.ndarray  # voxel (column, row from the bottom, slice) to RAS+ mm, as NIfTI
    #                     stores it
    sheared: bool  # slices step off their normal (a tilted CT gantry): no NIfTI qform

    @property
    def voxel_mm3(self) -> float:
        return float(abs(np.linalg.det(self.affine[:3, :3])))


class _NotAVolume(Exception):
    """Why the slices of a series do not stack into one regular volume."""


@dataclass
class _SliceHeader:
    uid: str
    number: str  # SeriesNumber, "" when absent
    description: str  # SeriesDescription, "" when absent
    size: tuple[int, int]  # (rows, columns)
    position: np.ndarray | None  # ImagePositionPatient, mm
    orientation: np.ndarray | None  # ImageOrientationPatient: row then column cosines
    spacing: np.ndarray | None  # PixelSpacing: between rows, between columns (mm)


def stack_dicom_series(paths: list[Path]) -> tuple[list, list[str]]:
    """`paths` with the single-frame DICOM files of each series of two or more slices
    replaced, where the first of them stood, by one DicomSeries; and notes on the series
    whose slices do not stack into a regular volume (uneven spacing, two slices at one
    position, mixed sizes, no geometry), whose files then stay single slices."""
    headers = {path: header for path in paths
               if is_dicom_file(path) and (header := _slice_header(path)) is not None}
    members: dict[str, list[Path]] = defaultdict(list)
    for path, header in headers.items():
        members[header.uid].append(path)
    stacked, notes = {}, []
    for uid, files in members.items():
        if len(files) < 2:
            continue
        try:
            stacked[uid] = _stack(uid, files, headers)
        except _NotAVolume as why:
            notes.append(f"{_folders_of(files)}: {len(files)} DICOM slices of series "
                         f"{_series_label(headers[files[0]])} are segmented one by one, not "
                         f"as a volume: {why}")
    _name_series(list(stacked.values()), headers)
    items, placed = [], set()
    for path in paths:
        uid = headers[path].uid if path in headers else None
        if uid not in stacked:
            items.append(path)
        elif uid not in placed:
            placed.add(uid)
            items.append(stacked[uid])
    return items, notes


def series_labels_to_nifti(labels: list[np.ndarray], series: DicomSeries, output: str | Path,
                           class_count: int) -> Path:
    """Write the class indices of each slice of `series` (in its order) as a NIfTI label
    volume in the series' geometry (written atomically; .nii or .nii.gz by the extension)."""
    return _save_volume(_series_volume(labels, series, np.uint8), Path(output), np.uint8,
                        max(class_count - 1, 1))


def series_probabilities_to_nifti(maps: list[np.ndarray], series: DicomSeries,
                                  output: str | Path) -> Path:
    """Write one class's probabilities (0..1) of each slice of `series` as a float32 NIfTI
    volume in the series' geometry (written atomically)."""
    return _save_volume(_series_volume(maps, series, np.float32), Path(output), np.float32, 1)


def _series_volume(slices: list[np.ndarray], series: DicomSeries, dtype):
    """Per-slice arrays of `series` (in its order) as a NIfTI image in its geometry."""
    import nibabel as nib

    volume = np.stack([np.flipud(item).T for item in slices], axis=2).astype(dtype)
    image = nib.Nifti1Image(volume, series.affine)
    image.header.set_xyzt_units("mm")
    image.set_sform(series.affine, code="scanner")
    # A qform cannot hold a shear; leaving it out keeps viewers on the exact sform.
    image.set_qform(None if series.sheared else series.affine,
                    code="unknown" if series.sheared else "scanner")
    return image


def series_folder(folder: Path) -> DicomSeries | None:
    """The DICOM series that the files of `folder` stack into (the folder's name is its name);
    None when the folder holds no DICOM file. A VisionsuiteError names the folder when its
    DICOM files are not one series of two or more slices that stack into a regular volume."""
    series, why = _folder_series(str(folder))
    if why:
        raise VisionsuiteError(f"{folder}: {why}")
    return series


@functools.lru_cache(maxsize=1024)  # asked by pairing, sizing, decoding and data check alike
def _folder_series(folder: str) -> tuple[DicomSeries | None, str]:
    files = [path for path in sorted(Path(folder).iterdir())
             if path.is_file() and not path.name.startswith(".")
             and is_dicom_file(path)]
    if not files:
        return None, ""
    # Files that are no slice of a series (a DICOMDIR, a report) are left out.
    headers = {path: header for path in files if (header := _slice_header(path)) is not None}
    series = {header.uid for header in headers.values()}
    if len(headers) < 2 or len(series) != 1:
        return None, (f"{len(files)} DICOM file(s) but not one series of two or more "
                      f"single-frame slices ({len(series)} series; give each series a folder "
                      "of its own)")
    try:
        found = _stack(series.pop(), list(headers), headers)
    except _NotAVolume as why:
        return None, f"its DICOM slices do not stack into a volume: {why}"
    found.name = Path(folder).name
    return found, ""


def _series_of_folder(folder: Path) -> DicomSeries:
    series = series_folder(folder)
    if series is None:
        raise UnreadableMedical(f"{folder}: a folder without DICOM files")
    return series


def label_slices_for(path: str | Path, image: str | Path,
                     binary: bool = False) -> list[np.ndarray]:
    """The slices of the label volume `path` on the slices of `image` (a DICOM series folder,
    or a NIfTI volume), as read_slices(image) gives them. On a series, and on a NIfTI image of
    another size (another axis order, resolution or extent), each pixel takes the label voxel
    at its place in the patient (nearest; both affines map voxels to RAS+ mm), so that labels
    stored in another orientation or axis order still land on their pixels; a label volume of
    the NIfTI image's size pairs voxel by voxel. Raw values, as read_label_slices."""
    path, image = Path(path), Path(image)
    if not is_volume(path):
        raise UnreadableMedical(f"{path}: the mask of {image.name} must be a label volume "
                                "(NIfTI, NRRD, MetaImage), a DICOM SEG or an RTSTRUCT")
    if image.is_dir():  # a DICOM series
        series = _series_of_folder(image)
        columns, rows = _read(series.paths[0], header_only=True).size
        return _labels_on_grid(_load_volume(path), path, series.affine,
                               (columns, rows, len(series.paths)), binary,
                               f"DICOM series {image}")
    reference, labels = _load_volume(image), _load_volume(path)
    shape = _shape3(reference)
    if _shape3(labels) == shape:
        # Voxel by voxel as stored, whatever the affines say: masks saved beside their image
        # with an identity or otherwise wrong affine are common, and nnU-Net pairs them so too.
        if not np.allclose(labels.affine, reference.affine, atol=1e-3):
            from visionsuite.core.progress import warn

            warn(f"{path}: its affine differs from its image {image.name}'s; paired voxel by "
                 "voxel as stored, the two being of one size")
        return read_label_slices(path, binary)
    return _labels_on_grid(labels, path, reference.affine, shape, binary,
                           f"its image {image.name}")


def dicom_labels_kind(path: Path) -> str | None:
    """"SEG" for a DICOM Segmentation (labels as 3D Slicer, OHIF and the Cancer Imaging
    Archive's collections store them, one segment a structure), "RTSTRUCT" for a radiotherapy
    structure set (each structure's contours, slice by slice, as planning systems export
    organs at risk and targets); None for any other file."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    if not path.is_file() or not is_dicom_file(path):
        return None
    try:
        header = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["Modality"])
    except (InvalidDicomError, OSError, ValueError, EOFError):
        return None
    modality = str(header.get("Modality", "")).strip()
    return modality if modality in ("SEG", "RTSTRUCT") else None


def label_names_of(path: Path) -> tuple[list[str], str] | None:
    """The class names a label file gives, and where they come from: background, then a DICOM
    SEG's segment labels in their numbers' order, an RTSTRUCT's structure names in their ROI
    numbers' order, or a 3D Slicer segmentation's (.seg.nrrd) segment names in their label
    values' order (where those are 1, 2, ...); None for any other file."""
    kind = dicom_labels_kind(path)
    if kind == "RTSTRUCT":
        names = [name for _, name in _structures(path)]
    elif kind == "SEG":
        names = seg_segment_names(path)[1:]
    elif path.name.lower().endswith(".seg.nrrd"):
        names = _slicer_segment_names(path)
    else:
        return None
    what = "the structures" if kind == "RTSTRUCT" else "the segments"
    source = f"DICOM {kind}" if kind else "3D Slicer"
    return (["background", *names], f"{what} of {path.name} ({source})") if names else None


def _slicer_segment_names(path: Path) -> list[str]:
    """A .seg.nrrd's segment names (its header's SegmentN_Name) in the order of their label
    values, where those are 1, 2, ... in one layer; [] otherwise."""
    import SimpleITK as sitk

    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return []
    keys = set(reader.GetMetaDataKeys())
    segments = []
    for number in range(len(keys)):
        if f"Segment{number}_Name" not in keys:
            break
        value = reader.GetMetaData(f"Segment{number}_LabelValue") \
            if f"Segment{number}_LabelValue" in keys else ""
        segments.append((int(value) if value.strip().isdigit() else -1,
                         reader.GetMetaData(f"Segment{number}_Name")))
    segments.sort()
    return [name for _, name in segments] \
        if [value for value, _ in segments] == list(range(1, len(segments) + 1)) else []


def dicom_label_slices(path: Path, image: Path, kind: str,
                       binary: bool = False) -> list[np.ndarray]:
    """The labels of a DICOM SEG or RTSTRUCT (`kind`, dicom_labels_kind's) on the slices of
    the image it labels."""
    if kind == "RTSTRUCT":
        return rtstruct_label_slices(path, image, binary)
    return seg_label_slices(path, image, binary)


def seg_segment_names(path: Path) -> list[str]:
    """background, then the labels of a DICOM SEG's segments in their numbers' order."""
    import pydicom

    header = pydicom.dcmread(path, stop_before_pixels=True)
    segments = sorted(header.get("SegmentSequence", []), key=lambda item: item.SegmentNumber)
    return ["background"] + [str(item.get("SegmentLabel", "") or f"segment_{item.SegmentNumber}")
                             for item in segments]


def seg_label_slices(path: Path, image: Path, binary: bool = False) -> list[np.ndarray]:
    """A DICOM SEG's labels on the slices of the image it segments (a series folder, in
    read_slices' order, or one single-frame DICOM file): each pixel the number of the segment
    covering it (0: none; 255 for any, `binary`), the SEG's frames matched to the images they
    reference, an image that none references being empty. A SEG referencing none of them is
    an error. (A multi-frame image's SEG is matched as one image: its frames are not.)"""
    import highdicom as hd
    import pydicom

    paths = _series_of_folder(image).paths if image.is_dir() else [image]
    uids = [str(pydicom.dcmread(p, stop_before_pixels=True,
                                specific_tags=["SOPInstanceUID"]).SOPInstanceUID) for p in paths]
    try:
        seg = hd.seg.segread(path)
        referenced = {uid for _, _, uid in seg.get_source_image_uids()}
        if not referenced & set(uids):
            raise UnreadableMedical(f"{path}: a DICOM SEG of other images than {image.name}'s")
        numbers = [int(item.SegmentNumber) for item in seg.SegmentSequence]
        labels = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=uids, segment_numbers=numbers, combine_segments=True,
            assert_missing_frames_are_empty=True, skip_overlap_checks=True)
    except (AttributeError, KeyError, ValueError, RuntimeError) as err:
        raise UnreadableMedical(f"{path}: unreadable DICOM SEG ({err})") from None
    if binary:
        labels = np.where(labels > 0, 255, 0)
    return [plane.astype(np.uint8) for plane in labels]


def _structures(path: Path, dataset=None) -> list[tuple[int, str]]:
    """(ROI number, name) of an RTSTRUCT's structures, in number order."""
    import pydicom

    dataset = dataset or pydicom.dcmread(path, stop_before_pixels=True)
    return sorted((int(item.ROINumber), str(item.get("ROIName", "") or f"roi_{item.ROINumber}"))
                  for item in dataset.get("StructureSetROISequence", []))


def rtstruct_label_slices(path: Path, image: Path, binary: bool = False) -> list[np.ndarray]:
    """An RTSTRUCT's structures filled in on the slices of the image it outlines (a series
    folder, in read_slices' order, or one DICOM file): each closed contour (patient mm) is put
    on the slice it references, else the slice its plane lies on, and projected onto that
    slice's pixels; the contours of one structure on one slice fill even-odd (a contour inside
    another cuts a hole, as planning systems draw them); structures are classes 1.. in ROI
    number order, a smaller structure kept over a larger one where they overlap (a target in
    its organ); 255 for any, `binary`. Contours of points and open lines have no area and are
    left out. One that lies on no slice is an error naming the structure."""
    import cv2
    import pydicom

    paths = _series_of_folder(image).paths if image.is_dir() else [image]
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in paths]
    planes = [_plane(header, p) for header, p in zip(headers, paths)]
    by_uid = {str(header.SOPInstanceUID): index for index, header in enumerate(headers)}
    dataset = pydicom.dcmread(path, stop_before_pixels=True)
    structures = _structures(path, dataset)
    shape = (int(headers[0].Rows), int(headers[0].Columns))
    filled = {number: np.zeros((len(paths), *shape), bool) for number, _ in structures}
    names = dict(structures)
    for roi in dataset.get("ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        if number not in filled:
            continue
        for contour in roi.get("ContourSequence", []):
            if str(contour.get("ContourGeometricType", "CLOSED_PLANAR")) != "CLOSED_PLANAR":
                continue
            points = np.asarray(contour.ContourData, float).reshape(-1, 3)
            referenced = [str(item.ReferencedSOPInstanceUID)
                          for item in contour.get("ContourImageSequence", [])]
            index = next((by_uid[uid] for uid in referenced if uid in by_uid), None)
            index = _slice_of(points, planes) if index is None else index
            if index is None:
                raise UnreadableMedical(f"{path}: a contour of {names[number]} lies on no "
                                        f"slice of {image.name}")
            drawn = np.zeros(shape, np.uint8)
            cv2.fillPoly(drawn, [np.round(planes[index].pixels(points) * 16).astype(np.int32)],
                         1, lineType=cv2.LINE_8, shift=4)
            filled[number][index] ^= drawn.astype(bool)
    labels = np.zeros((len(paths), *shape), np.uint8)
    order = sorted(structures, key=lambda item: -int(filled[item[0]].sum()))  # large first
    value = {number: position for position, (number, _) in enumerate(structures, 1)}
    for number, _ in order:
        labels[filled[number]] = 255 if binary else value[number]
    return list(labels)


@dataclass
class _Plane:
    """A slice's place in the patient: its first pixel's centre, the directions of its rows
    and columns, and its pixel spacing (between rows, between columns), in mm."""

    origin: np.ndarray
    along_row: np.ndarray  # the direction in which the column index grows
    along_column: np.ndarray  # the direction in which the row index grows
    spacing: np.ndarray

    def pixels(self, points: np.ndarray) -> np.ndarray:
        """Patient points (N, 3) as (column, row) pixel coordinates on the slice."""
        offset = points - self.origin
        return np.stack([offset @ self.along_row / self.spacing[1],
                         offset @ self.along_column / self.spacing[0]], axis=-1)

    def distance(self, points: np.ndarray) -> float:
        normal = np.cross(self.along_row, self.along_column)
        return float(np.abs((points - self.origin) @ normal).max())


def _plane(header, path: Path) -> _Plane:
    position = _vector(header.get("ImagePositionPatient"), 3)
    orientation = _vector(header.get("ImageOrientationPatient"), 6)
    spacing = _vector(header.get("PixelSpacing"), 2)
    if position is None or orientation is None or spacing is None:
        raise UnreadableMedical(f"{path}: no patient geometry (position, orientation, pixel "
                                "spacing) to put an RTSTRUCT's contours on")
    return _Plane(position, orientation[:3], orientation[3:], spacing)


def _slice_of(points: np.ndarray, planes: list[_Plane]) -> int | None:
    """The slice whose plane a contour lies on (within a tenth of the slices' spacing, or
    0.1 mm for one slice), else None."""
    distances = [plane.distance(points) for plane in planes]
    step = float(np.min(np.diff(sorted(float(p.origin @ np.cross(p.along_row, p.along_column))
                                       for p in planes)))) if len(planes) > 1 else 1.0
    best = int(np.argmin(distances))
    return best if distances[best] <= max(0.1 * step, 0.1) else None


def _shape3(volume) -> tuple[int, int, int]:
    shape = tuple(int(n) for n in volume.shape)
    return shape[:3] if len(shape) >= 3 else shape + (1,)


def volume_format(path: Path) -> str:
    name = path.name.lower()
    return "NIfTI" if name.endswith(NIFTI_SUFFIXES) else \
        "NRRD" if name.endswith((".nrrd", ".nhdr")) else "MetaImage"


def _load_volume(path: Path):
    """A volume file as a nibabel NIfTI image: NIfTI as it is; NRRD and MetaImage through
    SimpleITK, their voxels turned to NIfTI's (x, y, z) order and their patient geometry
    (ITK's LPS+ origin, direction and spacing) to NIfTI's RAS+ affine, so that everything
    after reads, resamples and writes them as NIfTI volumes."""
    import nibabel as nib

    if volume_format(path) == "NIfTI":
        try:
            return nib.load(path)
        except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as err:
            raise UnreadableMedical(f"{path}: unreadable NIfTI file ({err})") from None
    import SimpleITK as sitk

    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise UnreadableMedical(f"{path}: unreadable {volume_format(path)} file "
                                f"({str(err).strip().splitlines()[-1]})") from None
    if image.GetNumberOfComponentsPerPixel() > 1:
        raise UnreadableMedical(f"{path}: {image.GetNumberOfComponentsPerPixel()} values a "
                                "voxel (a segmentation of overlapping layers, a vector "
                                "image); save one label per voxel (3D Slicer: export the "
                                "segmentation to a labelmap)")
    dimension = image.GetDimension()
    rotation, spacing, origin = np.eye(3), np.ones(3), np.zeros(3)
    rotation[:dimension, :dimension] = np.reshape(image.GetDirection(), (dimension, dimension))
    spacing[:dimension], origin[:dimension] = image.GetSpacing(), image.GetOrigin()
    affine = np.eye(4)
    affine[:3, :3], affine[:3, 3] = rotation * spacing, origin
    volume = nib.Nifti1Image(np.ascontiguousarray(sitk.GetArrayFromImage(image).T),
                             np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine)
    volume.header.set_xyzt_units("mm")
    return volume


def _labels_on_grid(volume, path: Path, affine: np.ndarray, shape: tuple[int, int, int],
                    binary: bool, what: str) -> list[np.ndarray]:
    """The labels of `volume` (the NIfTI image of `path`), nearest, on the voxels of a grid
    (`affine`, `shape`), as slices read here: pixel (row r, column c) of slice k is voxel
    (c, shape[1] - 1 - r, k)."""
    try:
        labels = np.asarray(volume.dataobj)
    except (OSError, ValueError, EOFError) as err:
        raise UnreadableMedical(f"{path}: unreadable {volume_format(path)} file ({err})") \
            from None
    labels = labels.reshape(labels.shape[:3] if labels.ndim >= 3 else labels.shape + (1,))
    to_labels = np.linalg.inv(volume.affine) @ affine
    columns, rows, count = shape
    row, column = np.mgrid[:rows, :columns]
    slices = []
    for k in range(count):
        voxels = np.stack([column, rows - 1 - row, np.full_like(row, k), np.ones_like(row)])
        at = np.rint(np.tensordot(to_labels[:3], voxels, axes=1)).astype(np.int64)
        if any((at[axis] < 0).any() or (at[axis] >= labels.shape[axis]).any()
               for axis in range(3)):
            raise UnreadableMedical(f"{path}: its volume does not cover slice {k} of {what} "
                                    "(another scan, or a cropped label volume?)")
        slices.append(_label_values(labels[at[0], at[1], at[2]].astype(np.float32), path,
                                    binary))
    return slices


def _save_volume(image, output: Path, dtype, top: float, reference: Path | None = None
                 ) -> Path:
    """A label (uint8) or probability (float32) volume, its display range 0..`top`; NRRD
    and MetaImage outputs through SimpleITK in the geometry of `reference`, one of theirs."""
    import nibabel as nib

    if reference is not None and volume_format(output) != "NIfTI":
        return _save_itk_volume(np.asarray(image.dataobj, dtype), reference, output)
    image.header.set_data_dtype(dtype)
    image.header.set_slope_inter(1.0, 0.0)
    image.header["cal_min"], image.header["cal_max"] = 0, top
    suffix = ".nii.gz" if output.name.lower().endswith(".gz") else ".nii"
    with atomic_path(output, suffix=suffix) as tmp:
        nib.save(image, tmp)
    return output


def _save_itk_volume(voxels: np.ndarray, reference: Path, output: Path) -> Path:
    """NIfTI-ordered (x, y, z) voxels written as `output` (.nrrd, .mha) with the origin,
    spacing and directions of the NRRD or MetaImage `reference` (_load_volume's way back:
    ITK keeps its voxels z, y, x)."""
    import SimpleITK as sitk

    like = sitk.ImageFileReader()  # its header: _volume_like has read its voxels already
    like.SetFileName(str(reference))
    like.ReadImageInformation()
    image = sitk.GetImageFromArray(np.ascontiguousarray(
        voxels.T.reshape(tuple(reversed(like.GetSize())))))
    image.SetOrigin(like.GetOrigin())
    image.SetSpacing(like.GetSpacing())
    image.SetDirection(like.GetDirection())
    with atomic_path(output, suffix=volume_suffix(output)) as tmp:
        sitk.WriteImage(image, str(tmp), True)  # compressed
    return output


def _slice_header(path: Path) -> _SliceHeader | None:
    """The series and geometry of a single-frame DICOM image; None for multi-frame files,
    files without a series UID or pixels (a DICOMDIR), and unreadable ones (segmented, or
    reported, on their own)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True)
        if int(dataset.get("NumberOfFrames", 1) or 1) != 1 \
                or not dataset.get("SeriesInstanceUID") or not dataset.get("Rows"):
            return None
        return _SliceHeader(
            uid=str(dataset.SeriesInstanceUID), number=str(dataset.get("SeriesNumber", "") or ""),
            description=str(dataset.get("SeriesDescription", "") or "").strip(),
            size=(int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)),
            position=_vector(dataset.get("ImagePositionPatient"), 3),
            orientation=_vector(dataset.get("ImageOrientationPatient"), 6),
            spacing=_vector(dataset.get("PixelSpacing"), 2))
    except (InvalidDicomError, OSError, ValueError, TypeError, EOFError):
        return None


def _vector(value, length: int) -> np.ndarray | None:
    try:
        vector = np.array([float(v) for v in value], dtype=np.float64)
    except (TypeError, ValueError):
        return None
    return vector if vector.shape == (length,) and np.isfinite(vector).all() else None


def _stack(uid: str, files: list[Path], headers: dict) -> DicomSeries:
    slices = [headers[path] for path in files]
    if any(s.position is None or s.orientation is None or s.spacing is None for s in slices):
        raise _NotAVolume("a slice lacks ImagePositionPatient, ImageOrientationPatient or "
                          "PixelSpacing")
    first = slices[0]
    for name, same in (("sizes", lambda s: s.size == first.size),
                       ("orientations", lambda s: np.allclose(s.orientation, first.orientation,
                                                              atol=1e-4)),
                       ("pixel spacings", lambda s: np.allclose(s.spacing, first.spacing,
                                                                rtol=1e-4))):
        if not all(same(s) for s in slices):
            raise _NotAVolume(f"slices of different {name}")
    along_row, along_column = first.orientation[:3], first.orientation[3:]
    normal = np.cross(along_row, along_column)
    order = np.argsort([s.position @ normal for s in slices], kind="stable")
    positions = np.array([slices[i].position for i in order])
    gaps = np.diff(positions @ normal)
    if gaps.min() < 1e-3:
        raise _NotAVolume("two slices at one position (echoes, phases or repeats: give one "
                          "set of slices)")
    step = (positions[-1] - positions[0]) / (len(positions) - 1)
    expected = positions[0] + np.arange(len(positions))[:, None] * step
    if np.abs(positions - expected).max() > max(0.05, 0.01 * np.linalg.norm(step)):
        raise _NotAVolume(f"uneven slice spacing ({gaps.min():.4g} to {gaps.max():.4g} mm)")
    row_spacing, column_spacing = first.spacing
    last_row = (first.size[0] - 1) * row_spacing * along_column
    lps = np.eye(4)
    lps[:3, 0] = along_row * column_spacing  # voxel axis 0: the column index
    lps[:3, 1] = -along_column * row_spacing  # voxel axis 1: the row index, bottom-up
    lps[:3, 2] = step
    lps[:3, 3] = positions[0] + last_row  # voxel (0, 0, 0): the first slice's bottom row
    affine = np.diag([-1.0, -1.0, 1.0, 1.0]) @ lps  # DICOM's LPS+ to NIfTI's RAS+
    sheared = bool(np.linalg.norm(np.cross(step / np.linalg.norm(step), normal)) > 1e-3)
    return DicomSeries("", uid, [files[i] for i in order], affine, sheared)


def _name_series(series: list[DicomSeries], headers: dict) -> None:
    """Each series is named by its folder; series that share a folder add their number."""
    folders = defaultdict(list)
    for item in series:
        folders[item.paths[0].parent].append(item)
    for folder, sharing in folders.items():
        base = folder.resolve().name or "series"
        for index, item in enumerate(sharing, 1):
            number = headers[item.paths[0]].number
            item.name = base if len(sharing) == 1 else f"{base}_series{number or index}"


def _series_label(header: _SliceHeader) -> str:
    """'2 (Scout)', or the UID where the series has no number: for notes."""
    label = header.number or header.uid
    return f"{label} ({header.description})" if header.description else label


def _folders_of(files: list[Path]) -> str:
    return ", ".join(sorted({str(path.parent) for path in files}))


# --------------------------------------------------------------------------- reading


def _read(path: Path, labels: bool = False, header_only: bool = False) -> Slices:
    if is_array_file(path):
        return _read_arrays(path, labels, header_only)
    if is_volume(path):
        return _read_nifti(path, header_only)
    if is_medical_file(path):  # DICOM by its extension or its marker
        return _read_dicom(path, labels, header_only)
    raise UnreadableMedical(f"{path}: not a DICOM or NIfTI file")


def _read_nifti(path: Path, header_only: bool) -> Slices:
    import nibabel as nib

    kind = volume_format(path)
    try:
        image = _load_volume(path)
        zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
        shape = image.shape
        if len(shape) == 4 and shape[3] == 1:
            shape = shape[:3]
        if len(shape) not in (2, 3, 4):
            raise UnreadableMedical(f"{path}: a {len(shape)}-D volume {shape}; visionsuite "
                                    "reads 2-D images, 3-D volumes (slices along the third "
                                    "axis) and 4-D ones (a channel per volume)")
        channels = int(shape[3]) if len(shape) == 4 else 1
        low, high = float(image.header["cal_min"]), float(image.header["cal_max"])
        own = ((low + high) / 2, high - low) if high > low else None
        spacing = (zooms + (1.0, 1.0, 1.0))[:3]
        if header_only:
            # Slice k is flipud(volume[:, :, k].T): as wide as the first axis is long.
            count = int(shape[2]) if len(shape) >= 3 else 1
            return Slices(np.zeros((0, 0, 0), np.float32), own, kind, spacing,
                          (int(shape[0]), int(shape[1])), count, channels)
        volume = np.asarray(image.dataobj, dtype=np.float32).reshape(shape)
    except UnreadableMedical:
        raise
    except (OSError, ValueError, EOFError, nib.filebasedimages.ImageFileError) as err:
        raise UnreadableMedical(f"{path}: unreadable {kind} file ({err})") from None
    if volume.ndim == 2:
        volume = volume[:, :, None]
    if not np.isfinite(volume).all():
        volume = np.nan_to_num(volume, nan=0.0, posinf=0.0, neginf=0.0)
    # swapaxes, not .T: a 4-D volume's slices keep their channels last
    values = np.stack([np.flipud(np.swapaxes(volume[:, :, k], 0, 1))
                       for k in range(volume.shape[2])])
    return Slices(values, own, kind, spacing, channels=channels)


def _read_arrays(path: Path, labels: bool, header_only: bool) -> Slices:
    """An array file's image (or mask) as slices (core/arrays.py), its own window by its
    values (none from the header alone)."""
    try:
        if header_only:
            shape = slices_shape(path, labels)
            return Slices(np.zeros((0, 0, 0), np.float32), None, array_format(path),
                          size=(shape[2], shape[1]), count=shape[0],
                          channels=shape[3] if len(shape) == 4 else 1)
        values = read_array(path, labels)
    except UnreadableArray as err:
        raise UnreadableMedical(str(err)) from None
    if labels and values.ndim == 4:  # class layers, one-hot (core/arrays.py)
        classes = one_hot_classes(values)
        values = values if classes is None else classes
    window = own_window(values)
    channels = values.shape[-1] if values.ndim == 4 else 1
    if labels and values.dtype.kind not in "iu":  # images: converted where windowed
        values = _finite_float32(values)
    return Slices(values, window, array_format(path), size=(values.shape[2], values.shape[1]),
                  count=values.shape[0], channels=channels)


def _finite_float32(values: np.ndarray) -> np.ndarray:
    """`values` as float32 (a copy), NaN and infinities as 0; a few slices at a time."""
    found = np.empty(values.shape, np.float32)
    step = _slices_per_step(found)
    for start in range(0, len(values), step):
        part = found[start:start + step]
        part[...] = values[start:start + step]
        if values.dtype.kind == "f" and not np.isfinite(part).all():
            np.nan_to_num(part, copy=False, nan=0.0, posinf=0.0, neginf=0.0)
    return found


def _slices_per_step(values: np.ndarray) -> int:
    """Slices of `values` whose float32 copy is about WINDOWED_BYTES."""
    return max(1, WINDOWED_BYTES // max(1, values[:1].size * 4))


def _read_dicom(path: Path, labels: bool, header_only: bool) -> Slices:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=header_only)
    except (InvalidDicomError, OSError, ValueError, EOFError) as err:
        raise UnreadableMedical(f"{path}: unreadable DICOM file ({err})") from None
    modality = str(dataset.get("Modality", "") or "").strip()
    photometric = str(dataset.get("PhotometricInterpretation", "") or "").strip()
    kind = " ".join(part for part in ("DICOM", modality, photometric) if part)
    own = _dicom_window(dataset)
    if header_only:
        size = (int(dataset.get("Columns", 0) or 0), int(dataset.get("Rows", 0) or 0))
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
        pixel = _vector(dataset.get("PixelSpacing"), 2)  # between rows, between columns
        # frames of one file keep no distance between them that all files agree on
        spacing = (float(pixel[1]), float(pixel[0]), 0.0) \
            if pixel is not None and frames == 1 else None
        return Slices(np.zeros((0, 0, 0), np.float32), own, kind, spacing, size, frames)
    if "PixelData" not in dataset:
        raise UnreadableMedical(f"{path}: DICOM file without pixel data ({kind})")
    try:
        pixels = dataset.pixel_array
    except Exception as err:  # pydicom raises many kinds; a missing decoder is the usual one
        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", "unknown transfer syntax")
        raise UnreadableMedical(f"{path}: cannot decode its pixel data ({name}: "
                                f"{_decoder_failure(err)}){_decoder_hint(name)}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    colour = int(dataset.get("SamplesPerPixel", 1) or 1) > 1
    if frames == 1:
        pixels = pixels[None]
    if colour:
        bits = int(dataset.get("BitsStored", 8) or 8)
        return Slices(pixels.astype(np.float32) / max(2 ** bits - 1, 1), None, kind,
                      colour=True)
    if not labels:
        from pydicom.pixels import apply_modality_lut

        pixels = apply_modality_lut(pixels, dataset)
    return Slices(np.asarray(pixels, np.float32), own, kind)


def _decoder_failure(err: Exception) -> str:
    """The first reason pydicom gives: its first line is often only 'Unable to decode as
    exceptions were raised by all available plugins:', the plugins' reasons follow."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    if not lines:
        return type(err).__name__
    return lines[1] if len(lines) > 1 and lines[0].endswith(":") else lines[0]


def _decoder_hint(syntax_name: str) -> str:
    # GDCM (installed with visionsuite) decodes the JPEG family but 12-bit JPEG Extended;
    # pylibjpeg-libjpeg does, under the GPL, so it is the user's choice to install.
    if "JPEG Extended" in syntax_name:
        return "; `pip install pylibjpeg pylibjpeg-libjpeg` adds a decoder for it"
    return ""


def _dicom_window(dataset) -> tuple[float, float] | None:
    center, width = dataset.get("WindowCenter"), dataset.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        center, width = _first(center), _first(width)
    except (TypeError, ValueError, IndexError):
        return None
    return (center, width) if width > 0 else None


def _first(value) -> float:
    """A window value: one number, or the first of several (MultiValue)."""
    if isinstance(value, (str, int, float)):
        return float(value)
    return float(value[0])


def _window(values: np.ndarray, own: tuple[float, float] | None, window
            ) -> tuple[float, float]:
    """(center, width): `window` (data.window) if set, else the file's `own`, else the
    values' percentile range."""
    if window:
        low, high = window_bounds(window)
        return (low + high) / 2, high - low
    if own is not None:
        return own
    low, high = percentiles(values, PERCENTILES) if values.dtype == np.float32 \
        else (np.nan, np.nan)
    if not np.isfinite([low, high]).all():  # an array file's values, as read (_read_arrays)
        values = _finite_float32(values)
        low, high = percentiles(values, PERCENTILES)
    if high <= low:
        low, high = float(values.min()), float(values.max())
    return (low + high) / 2, max(high - low, 1e-6)


def _to_8bit_colour(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values * 255), 0, 255).astype(np.uint8)
