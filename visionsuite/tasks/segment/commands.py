"""`visionsuite segment`: masks (PNG, or volumes and arrays in the input's format) and overlays
for images of any size."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import numpy as np

from visionsuite.core.arrays import is_array_file, labels_only
from visionsuite.core.files import RUNS, atomic_path, unique_stem
from visionsuite.core.images import UnreadableImage, fit_within, read_image_slices
from visionsuite.core.medical import (DicomSeries, dicom_labels_kind, file_stem,
                                      is_dicom_file, is_medical_file, is_volume,
                                      labels_to_dicom_seg, labels_to_volume,
                                      probabilities_to_volume, read_series_slices,
                                      series_labels_to_nifti, series_probabilities_to_nifti,
                                      stack_dicom_series, volume_suffix, voxel_volume_mm3)
from visionsuite.core.plots import colorize, object_colours, shown_image
from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.tasks.segment.channels import ChannelFiles, channel_groups, read_channel_files
from visionsuite.tasks.segment.colours import colours_rgb
from visionsuite.tasks.segment.components import class_numbers, keep_largest_components
from visionsuite.tasks.segment.metrics import predict_classes
from visionsuite.tasks.segment.tiles import sliding_window, trained_symmetries, with_symmetries

# A dataset's pictures of its labels drawn on its images (CoNSeP's Overlay/ beside Images/ and
# Labels/, NuCLS' visualization/): no images to segment where the dataset's folder is given
OVERLAY_FOLDERS = ("overlay", "overlays", "visualization", "visualizations", "visualisation",
                   "visualisations")


def _foreground_threshold(threshold: float | None, classes: int) -> float:
    """--threshold: 0.5 unless given; models of more than 2 classes take the most probable
    class, so a threshold given to one would go unused."""
    if threshold is None:
        return 0.5
    if classes > 2:
        raise VisionsuiteError(f"--threshold {threshold}: for 2-class models; this one has "
                               f"{classes} classes and takes the most probable at each pixel")
    if not 0 <= threshold <= 1:
        raise VisionsuiteError(f"--threshold {threshold}: must be between 0 and 1")
    return threshold


def _check_objects(objects: bool, classes: int, split_touching: float | None) -> None:
    """--objects numbers the foreground's components: of 2-class models only;
    --split-touching splits them."""
    if objects and classes != 2:
        raise VisionsuiteError(f"--objects: numbers the foreground's objects, for 2-class "
                               f"models; this one has {classes} classes")
    if split_touching is not None and not objects:
        raise VisionsuiteError("--split-touching: splits the objects that --objects numbers; "
                               "give --objects too")
    if split_touching is not None and split_touching < 0:
        raise VisionsuiteError(f"--split-touching {split_touching:g}: a tolerance in pixels, "
                               "0 or more (0: not split)")


def _touching_split(split_touching: float | None, settings: dict) -> float | None:
    """The tolerance --objects splits touching objects at (objects.split_touching): the one
    given (0: none), else the run's (model.split_touching, chosen on val), else none."""
    chosen = settings.get("split_touching") if split_touching is None else split_touching
    if chosen and split_touching is None:
        print(f"splitting touching objects, as training chose on val: at {chosen:g} px "
              "(--split-touching 0: not split)", file=sys.stderr)
    return chosen or None


def segment_images(run: str, inputs, output: str | Path | None = None, overlay: bool = False,
                   threshold: float | None = None, tile_overlap: float | None = None,
                   window: list[float] | None = None,
                   all_components: bool = False, probabilities: bool = False,
                   dicom_seg: bool = False, tta: bool | None = None,
                   objects: bool = False, split_touching: float | None = None) -> list[dict]:
    """Segment each image in `inputs` with RUN; write `<stem>.png` masks at the input's size
    (0/255 for 2 classes, else class indices; palette PNGs of class indices in the colours of
    a run trained on colour masks) and, with `overlay`, `<stem>_overlay.png`.
    A NIfTI volume gives `<stem>.nii.gz`, class indices with the input's affine and header
    (an NRRD or MetaImage volume `<stem>.nrrd` or `<stem>.mha` in its geometry);
    the files of a DICOM series (core.medical.stack_dicom_series) one `<folder>.nii.gz` in the
    series' geometry; a multi-frame DICOM `<stem>_<frame>.png` per frame. DICOM, NIfTI and
    16-bit intensities are windowed by `window` ([center, width]), else as the run was
    trained, each file as in training. Where training chose to keep only the largest connected
    component of some classes (components.py), each image, or volume, is post-processed so,
    unless `all_components`. With `probabilities`, also each class's probability maps
    (_write_probabilities); with `dicom_seg`, a DICOM Segmentation of each DICOM series or
    file (_write_dicom_seg). `tta`: average each tile's predictions over the flips and
    quarter turns the run trained with (tiles.trained_symmetries) [as the run: data.tta].
    With `objects` (2-class models), masks of 2-D images, TIFF stacks and arrays number the
    foreground's connected components 1..N instead, each image or slice on its own, as
    instance masks (Cellpose's, StarDist's) number cells: 16-bit; touching objects split
    at the tolerance `split_touching` (px; 0: not split) [as the run chose on val:
    model.split_touching]. Returns per-image class areas (and volumes in mm^3 for volumes;
    with `objects`, the count of objects)."""
    from visionsuite.config import load_config
    from visionsuite.core.evaluate import load_run_config
    from visionsuite.core.files import new_run_dir, writable_folder
    from visionsuite.core.images import collect_images
    from visionsuite.core.models import load_predictor, require_task, resolve_model
    from visionsuite.core.progress import progress, warn

    source = resolve_model(run)
    require_task(source, "segment", run)
    predictor = load_predictor(source)
    labels = source.labels or [f"class_{i}" for i in range(2)]
    # A bare model file carries no config: the shipped recipe's settings are assumed.
    trained = load_run_config(source) if source.run_dir is not None else load_config("segment")
    overlap = trained.data.tile_overlap if tile_overlap is None else tile_overlap
    window = window or source.settings.get("window") or trained.data.window
    # a run trained on colour masks
    colours = source.settings.get("mask_colors") or trained.data.colors
    levels = source.settings.get("mask_values") or trained.data.mask_values  # grey-coded
    tta = trained.data.tta if tta is None else tta
    predict_tiles = with_symmetries(predictor.predict,
                                    trained_symmetries(trained.augment) if tta else [])
    palette = _palette(colours, len(labels))
    max_size = source.settings.get("max_size")  # the scale the model was trained at
    threshold = _foreground_threshold(threshold, len(labels))
    _check_objects(objects, len(labels), split_touching)
    split = _touching_split(split_touching, source.settings) if objects else None
    kept = [] if all_components else source.settings.get("keep_largest_component", [])
    largest = [class_numbers(names, labels) for names in kept]
    if kept:
        print("keeping the largest connected component only, as training chose on val: of "
              f"{', '.join('+'.join(names) for names in kept)}", file=sys.stderr)
    items, notes = stack_dicom_series(_dataset_images(
        inputs, collect_images(inputs, outputs=(output,) if output else ())))
    for note in notes:
        warn(note)
    label_files = {item: kind for item in items if isinstance(item, Path)
                   and (kind := _labels_kind(item))}
    for path, kind in label_files.items():
        warn(f"{path}: {kind}, not an image; left out")
    items = [item for item in items if not (isinstance(item, Path) and item in label_files)]
    if source.settings.get("image_channels"):  # multi-modal MRI: a file per channel, or 4-D
        items, labels_left_out = channel_groups(items, source.settings["image_channels"])
        for path in labels_left_out:
            warn(f"{path}: the labels of a case, not an image; left out")
    folder = writable_folder(Path(output), "the masks") if output \
        else new_run_dir(Path(RUNS) / "segment", None, "predict")
    folder.mkdir(parents=True, exist_ok=True)
    results, used = [], set()
    bar = progress(items, total=len(items), desc="segmenting")
    for item in bar:
        series = isinstance(item, DicomSeries)
        try:
            images = _read_input(item, predictor.channels, window)
        except UnreadableImage as err:
            warn(f"{err}; {f'series {item.name}' if series else 'file'} skipped")
            continue
        predicted, maps, class_count = [], [], 2
        for index, image in enumerate(images):
            if len(images) > 1:  # a volume's slices take long: the bar moves with them
                bar.set_postfix_str(f"slice {index + 1}/{len(images)}")
            probs = _at_own_size(sliding_window(predict_tiles, fit_within(image, max_size),
                                                predictor.image_size, overlap), image.shape)
            predicted.append(predict_classes(probs, threshold).astype(np.uint8))
            maps += [probs.astype(np.float32)] if probabilities else []
            class_count = probs.shape[-1]
        if largest:  # the run's post-processing, a volume as one case (components.py)
            predicted = list(keep_largest_components([np.stack(predicted)], largest)[0])
        grouped = isinstance(item, ChannelFiles)
        reference = item if series else item.paths[0] if grouped else item
        stem = unique_stem(item.name if series else item.case if grouped else file_stem(item),
                           used)
        numbered = objects and not series and not is_volume(reference)
        if objects and not numbered:
            warn(f"{item.name if series else reference}: a volume; --objects numbers the "
                 "objects of 2-D images and stacks, so its class indices are written")
        if series:
            results.append(_write_series(item, images, predicted, labels, folder, stem, overlay,
                                         class_count, palette))
        else:
            results.append(_write_segmentation(reference, images, predicted, labels, folder,
                                               stem, overlay, class_count, palette, levels,
                                               numbered, split))
        if grouped:
            results[-1]["channels"] = [str(path) for path in item.paths]
        if probabilities:
            results[-1]["probabilities"] = _write_probabilities(maps, reference, labels,
                                                                folder, stem)
        if dicom_seg:
            written = _write_dicom_seg(item, predicted, labels, class_count, folder, stem,
                                       source)
            results[-1] |= {"dicom_seg": written} if written else {}
    if not results:
        raise VisionsuiteError("none of the images could be read")
    return results


def _write_dicom_seg(item, predicted: list[np.ndarray], labels: list[str], class_count: int,
                     folder: Path, stem: str, source) -> str | None:
    """`<stem>_seg.dcm`, the DICOM Segmentation of a DICOM series or file
    (medical.labels_to_dicom_seg); for any other input, or DICOM files whose SEG highdicom
    refuses to write (ultrasound cine: frames without a frame of reference) or cannot read
    back (a secondary capture's frames without pixel spacing), a warning and None: the masks
    written beside it stay."""
    from visionsuite.core.progress import warn

    if isinstance(item, ChannelFiles):  # NIfTI channels of one case
        warn(f"{item.case}: not DICOM; no DICOM SEG")
        return None
    sources = item.paths if isinstance(item, DicomSeries) else [item]
    name = item.name if isinstance(item, DicomSeries) else str(item)
    if not is_dicom_file(sources[0]):
        warn(f"{name}: not DICOM; no DICOM SEG")
        return None
    names = labels if len(labels) == class_count else [f"class_{i}" for i in range(class_count)]
    model = source.run_dir.name if source.run_dir is not None else source.path.name
    try:
        return str(labels_to_dicom_seg(predicted, sources, names, folder / f"{stem}_seg.dcm",
                                       model))
    except (AttributeError, KeyError, NotImplementedError, TypeError,
            ValueError) as err:  # highdicom's checks of the sources
        warn(f"{name}: no DICOM SEG: {first_line(str(err))}")
        return None


def _dataset_images(inputs, paths: list[Path]) -> list[Path]:
    """`paths` (the image files found in `inputs`) less, of each folder given that `train`
    reads as a dataset of images and their masks, its label files (masks, regions of
    interest) and its pictures of them (OVERLAY_FOLDERS: CoNSeP's Overlay/, its images with
    their nuclei drawn): a set's folder segmented whole gives masks of its images alone. A
    folder that is no such set keeps all, and a file holding an image and its mask (Synapse's
    .npz slices) is an image."""
    left_out = set()
    named = {os.path.abspath(item) for item in inputs}  # a file named is segmented
    for item in inputs:
        pairs = _dataset_pairs(item)
        if not pairs:
            continue
        root = Path(os.path.abspath(item))
        kept = named | {os.path.abspath(path) for pair in pairs
                        for path in (pair.image, *pair.channels)}
        labels = {os.path.abspath(path) for pair in pairs for path in _label_files(pair)}
        inside = [path for path in map(os.path.abspath, paths) if path not in kept
                  and Path(path).is_relative_to(root)]
        found = {path for path in inside if path in labels}
        overlays = {path for path in inside if _in_overlay_folder(path, root)} - found
        shown = ", ".join(sorted({Path(path).parent.name + "/" for path in overlays}))
        parts = [f"its {len(found)} label file(s)"] if found else []
        parts += [f"its {len(overlays)} overlay picture(s) in {shown}"] if overlays else []
        if parts:
            print(f"note: {item} is a dataset of images and their masks: "
                  f"{' and '.join(parts)} left out (name them to segment them)",
                  file=sys.stderr)
        left_out |= found | overlays
    return [path for path in paths if os.path.abspath(path) not in left_out]


def _dataset_pairs(folder) -> list:
    """The pairs of every split of `folder` where `train` reads it as a dataset; [] for a
    file, or a folder that it cannot read (then segmented whole)."""
    from visionsuite.core.splits import EVERY_IMAGE
    from visionsuite.tasks.segment.index import index_pairs

    if not Path(folder).is_dir():
        return []
    try:  # its warnings (index.warnings) speak of training on the set: not shown here
        # read as evaluate --data reads another set, whole: a set of one stack (a PanNuke
        # fold's images.npy beside its masks.npy) cannot be split, but it is a set
        index = index_pairs(folder, EVERY_IMAGE)
        return [pair for split in index.splits.values() for pair in split]
    except Exception:  # a probe: a folder that `train` cannot read is segmented whole
        return []


def _in_overlay_folder(path: str, root: Path) -> bool:
    """Whether `path` lies in a folder named as overlays (OVERLAY_FOLDERS) below the
    dataset's absolute `root`."""
    return any(part.lower() in OVERLAY_FOLDERS
               for part in Path(path).relative_to(root).parts[:-1])


def _label_files(pair) -> list[Path]:
    """Every file of a pair's labels and beside them: its mask(s), region of interest, the
    files the index left out (a second observer's labels, ISIC 2017's superpixels)."""
    return [pair.mask, *pair.more_masks, *pair.left_out,
            *(path for _, path in pair.class_masks if path is not None),
            *([pair.roi] if pair.roi is not None else [])]


def _labels_kind(path: Path) -> str | None:
    """What labels a file given among the images holds, where it holds labels and no image:
    a DICOM SEG or RTSTRUCT, an array file of masks alone (a folder of images and their
    labels given whole); None for an image."""
    kind = dicom_labels_kind(path)
    if kind:
        return f"a DICOM {kind} (labels of other images)"
    named = is_array_file(path) and labels_only(path)
    return f"an array file of labels alone ({named})" if named else None


def _read_input(item, channels: int, window: list[float] | None) -> list[np.ndarray]:
    """The slices of one input: a file, a DICOM series, or a case's channel files."""
    if isinstance(item, DicomSeries):
        return read_series_slices(item, channels, window)
    if isinstance(item, ChannelFiles):
        return read_channel_files(item.paths[0], item.paths[1:], channels, window)
    return read_image_slices(item, channels, window)


def _at_own_size(probs: np.ndarray, shape: tuple) -> np.ndarray:
    """Class probabilities predicted on an image scaled down by data.max_size, scaled back
    (bilinearly) to the image's own height and width."""
    import cv2

    if probs.shape[:2] == shape[:2]:
        return probs
    resized = cv2.resize(probs, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return resized.reshape(shape[:2] + probs.shape[2:])


def _palette(colours: list[str] | None, classes: int) -> np.ndarray | None:
    """The (classes, 3) colours of a run trained on colour masks (data.colors), else None."""
    return colours_rgb(colours) if colours and len(colours) == classes else None


def _write_segmentation(path: Path, images: list[np.ndarray], predicted: list[np.ndarray],
                        labels: list[str], folder: Path, stem: str, overlay: bool,
                        class_count: int, palette: np.ndarray | None = None,
                        levels: list[int] | None = None, objects: bool = False,
                        split: float | None = None) -> dict:
    """The mask file(s) of one input, its overlays, and its class areas. With a `palette`
    (the colours a run was trained on), PNG masks are palette PNGs of class indices that show
    those colours; with grey `levels` (data.mask_values), PNG and TIFF masks hold each
    class's level, as the masks it was trained on; with `objects`, masks number the
    foreground's objects (_numbered_objects; touching ones split at the tolerance `split`),
    their count is given, and overlays tint each object its own colour."""
    result = {"image": str(path)}
    numbered = len(images) > 1
    binary = class_count == 2
    found = [_numbered_objects(classes, path, split) for classes in predicted] \
        if objects else None

    def stored(index: int, shown: np.ndarray | None) -> np.ndarray:
        """Slice `index`'s mask as its file holds it (`shown`: in a palette)."""
        if found is not None:
            return found[index]
        classes = predicted[index]
        if levels and len(levels) == class_count:
            return np.asarray(levels, np.uint8)[classes]
        return classes * 255 if binary and shown is None else classes

    if is_volume(path):
        result["mask"] = str(labels_to_volume(predicted, path,
                                              folder / f"{stem}{volume_suffix(path)}",
                                              class_count))
    elif is_array_file(path):  # a NumPy array as the input's: (H, W), or (S, H, W) slices
        result["mask"] = str(_save_array([stored(i, None) for i in range(len(predicted))],
                                         folder / f"{stem}.npy"))
    elif numbered and not is_medical_file(path):  # a TIFF stack: one mask stack, page by page
        result["mask"] = str(_save_tiff_stack([stored(i, None) for i in range(len(predicted))],
                                              folder / f"{stem}.tif"))
    else:
        masks = []
        for index in range(len(predicted)):
            mask_path = folder / (f"{stem}_{index:03d}.png" if numbered else f"{stem}.png")
            _save_png(stored(index, palette), mask_path, None if objects else palette)
            masks.append(str(mask_path))
        result["mask" if not numbered else "masks"] = masks[0] if not numbered else masks
    if overlay:  # with objects, each object its own colour
        shown, colours = (predicted, palette) if found is None else (
            found, object_colours(max(int(numbers.max(initial=0)) for numbers in found)))
        overlays = _write_overlays(images, shown, folder, stem, colours)
        result["overlay" if not numbered else "overlays"] = overlays if numbered else overlays[0]
    if numbered:
        result["slices"] = len(images)
    result["areas"] = _areas(np.stack(predicted), labels, class_count, voxel_volume_mm3(path))
    if found is not None:
        result["objects"] = sum(int(numbers.max(initial=0)) for numbers in found)
    return result


def _numbered_objects(classes: np.ndarray, path: Path, split: float | None) -> np.ndarray:
    """The foreground's 8-connected components numbered 1..N (0 the background), touching
    ones split at the tolerance `split`, as 16-bit values (as the objects of an instance
    mask are scored: objects.py)."""
    from visionsuite.tasks.segment.objects import predicted_objects

    numbers = predicted_objects(classes > 0, split)
    if numbers.max(initial=0) > np.iinfo(np.uint16).max:
        raise VisionsuiteError(f"{path}: {numbers.max():,} objects, more than a 16-bit mask "
                               "numbers")
    return numbers.astype(np.uint16)


def _write_probabilities(maps: list[np.ndarray], reference, labels: list[str], folder: Path,
                         stem: str) -> dict:
    """Each class's probability but class 0's (1 minus their sum), as the model gave it,
    before any post-processing: `<stem>_prob_<class>`, a float32 NIfTI volume in the geometry
    of a NIfTI file or DICOM series `reference`, a float32 .npy for an array file, a 16-bit
    TIFF stack for a TIFF stack, else a 16-bit PNG (value / 65535; `_<slice>` for each frame
    of a multi-frame file)."""
    numbered = len(maps) > 1
    written = {}
    for number in range(1, maps[0].shape[-1]):
        name = labels[number] if number < len(labels) else f"class_{number}"
        base = f"{stem}_prob_{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}"
        slices = [item[..., number] for item in maps]
        if isinstance(reference, DicomSeries):
            written[name] = str(series_probabilities_to_nifti(slices, reference,
                                                              folder / f"{base}.nii.gz"))
        elif is_volume(reference):
            written[name] = str(probabilities_to_volume(
                slices, reference, folder / f"{base}{volume_suffix(reference)}"))
        elif is_array_file(reference):
            written[name] = str(_save_array([item.astype(np.float32) for item in slices],
                                            folder / f"{base}.npy"))
        elif numbered and not is_medical_file(reference):
            written[name] = str(_save_tiff_stack([_sixteen_bit(item) for item in slices],
                                                 folder / f"{base}.tif"))
        else:
            paths = [folder / (f"{base}_{index:03d}.png" if numbered else f"{base}.png")
                     for index in range(len(slices))]
            for item, path in zip(slices, paths):
                _save_png(_sixteen_bit(item), path)
            written[name] = [str(path) for path in paths] if numbered else str(paths[0])
    return written


def _sixteen_bit(probability: np.ndarray) -> np.ndarray:
    return np.round(np.clip(probability, 0, 1) * 65535).astype(np.uint16)


def _write_series(series: DicomSeries, images: list[np.ndarray], predicted: list[np.ndarray],
                  labels: list[str], folder: Path, stem: str, overlay: bool, class_count: int,
                  palette: np.ndarray | None) -> dict:
    """A DICOM series' label volume `<stem>.nii.gz` in its geometry, its overlays (one a
    slice, in slice order) and its class areas and volumes."""
    result = {"image": str(series.paths[0].parent), "series": series.uid,
              "mask": str(series_labels_to_nifti(predicted, series, folder / f"{stem}.nii.gz",
                                                 class_count))}
    if overlay:
        result["overlays"] = _write_overlays(images, predicted, folder, stem, palette)
    result["slices"] = len(images)
    result["areas"] = _areas(np.stack(predicted), labels, class_count, series.voxel_mm3)
    return result


def _write_overlays(images: list[np.ndarray], predicted: list[np.ndarray], folder: Path,
                    stem: str, palette: np.ndarray | None) -> list[str]:
    """`<stem>_overlay.png`, or `<stem>_overlay_<slice>.png` for each slice of a stack."""
    overlays = []
    for index, (image, classes) in enumerate(zip(images, predicted)):
        name = f"{stem}_overlay_{index:03d}.png" if len(images) > 1 else f"{stem}_overlay.png"
        _save_png(overlay_image(image, classes, palette=palette), folder / name)
        overlays.append(str(folder / name))
    return overlays


def _areas(classes: np.ndarray, labels: list[str], count: int,
           voxel_mm3: float | None = None) -> dict:
    pixels = np.bincount(classes.ravel(), minlength=count)
    total = max(int(classes.size), 1)
    names = labels if len(labels) == count else [f"class_{i}" for i in range(count)]
    areas = {name: {"pixels": int(pixels[i]), "fraction": round(float(pixels[i] / total), 5)}
             for i, name in enumerate(names)}
    if voxel_mm3:
        for i, name in enumerate(names):
            areas[name]["volume_mm3"] = round(float(pixels[i] * voxel_mm3), 3)
    return areas


def _save_png(array: np.ndarray, path: Path, palette: np.ndarray | None = None) -> None:
    from PIL import Image

    image = Image.fromarray(array)
    if palette is not None:  # the class indices as they are, shown in the palette's colours
        image.putpalette(palette.ravel().tolist())
    with atomic_path(path, suffix=".png") as tmp:
        image.save(tmp, format="PNG")


def _save_array(slices: list[np.ndarray], path: Path) -> Path:
    """Slices as one .npy: (H, W) for one, else (S, H, W), as core/arrays.py reads them."""
    with atomic_path(path, suffix=".npy") as tmp:
        np.save(tmp, slices[0] if len(slices) == 1 else np.stack(slices), allow_pickle=False)
    return path


def _save_tiff_stack(pages: list[np.ndarray], path: Path) -> Path:
    from PIL import Image

    first, *rest = [Image.fromarray(page) for page in pages]
    with atomic_path(path, suffix=".tif") as tmp:
        first.save(tmp, format="TIFF", save_all=True, append_images=rest, compression="tiff_lzw")
    return path


def overlay_image(image: np.ndarray, classes: np.ndarray, alpha: float = 0.45,
                  palette: np.ndarray | None = None) -> np.ndarray:
    """The image (grey or RGB) with every class but class 0 tinted by its colour (the run's
    own `palette`, else core.plots.colorize's)."""
    shown = shown_image(image)
    rgb = np.repeat(shown[..., None], 3, axis=-1) if shown.ndim == 2 else shown
    colors = (palette[classes] if palette is not None else colorize(classes)).astype(np.float32)
    tint = (classes > 0)[..., None]
    mixed = np.where(tint, (1 - alpha) * rgb + alpha * colors, rgb)
    return np.clip(mixed, 0, 255).astype(np.uint8)
