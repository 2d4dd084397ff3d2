"""Images paired with their masks by name in folders: images/ and masks/ (and roi/) by stem,
as public sets name their folders (DRIVE, HRF, ISIC, CVC-ClinicDB, Montgomery's folder per
class, ...), masks saved beside their images (LGG, BUSI, CHASE_DB1, ACDC), a folder per
case (the Data Science Bowl, KiTS, BraTS), numbered files (LiTS) and nnU-Net's file per
channel."""

from __future__ import annotations

import re
from pathlib import Path

from visionsuite.core.arrays import IMAGE_NAMES, LABEL_NAMES, case_of, holds_pair, is_array_file
from visionsuite.core.files import holds_data, inside, named_folder, sub_folders
from visionsuite.core.images import folder_image_files, other_files_note
from visionsuite.core.medical import file_stem, is_volume, series_folder
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.pairs import Pair

# Folder names, as our layout has them first, then as public datasets come: DRIVE
# (training/, test/ (core.files.named_folder); images/, 1st_manual/ labels, mask/ field of
# view) and HRF (images/, manual1/, mask/).
MASK_FOLDER_NAMES = ("masks", "labels", "1st_manual", "manual1", "groundtruth", "gt", "mask",
                     "labelstr")
# The Medical Segmentation Decathlon's and nnU-Net's imagesTr/ and labelsTr/ (imagesTs/, without
# labels, is not read), with the class names in dataset.json.
IMAGE_FOLDER_NAMES = ("images", "imagestr")
# Words that name a folder of masks, where the names above are not used: one folder not named
# with these words (Original/) beside folders named so (Ground Truth/) is images and masks.
IMAGE_FOLDER_WORDS = {"image", "images", "img", "imgs", "original", "input"}
MASK_FOLDER_WORDS = {"mask", "masks", "label", "labels", "gt", "groundtruth", "annotation",
                     "annotations", "segmentation", "segmentations", "manual", "ann", "annot"}
# What a case's mask folder may be named for, where its sub-folders are named after it (PH2)
LESION_WORDS = {"lesion", "lesions"}
# nnU-Net's image per channel: case_0000.nii.gz (, case_0001...) for labelsTr/case.nii.gz.
CHANNEL_FILE = re.compile(r"(?P<case>.+)_(?P<channel>\d{4})")
# A case folder's label volume beside a volume per channel (BraTS's <case>_seg.nii.gz)
CASE_LABEL_ENDINGS = ("seg", "label", "labels", "mask", "gt")
# A case folder's image and label volumes by name, as KiTS names them (imaging, segmentation),
# and label files numbered as their images, as LiTS names them (segmentation-0, volume-0).
CASE_IMAGE_NAMES = ("imaging", "image", "img", "volume", "ct", "mri", "scan", "data")
CASE_LABEL_NAMES = ("segmentation", "seg", "label", "labels", "mask", "gt")
NUMBERED_FILE = re.compile(r"(?P<word>[A-Za-z]+)[-_ ]?(?P<number>\d+)")
ROI_FOLDER_NAMES = ("roi", "fov", "mask")  # mask/ is the ROI where the labels are elsewhere
# Masks saved beside their images and named after them, in a folder without images/ and
# masks/: LGG MRI (kaggle_3m: one folder per patient of TCGA_..._1.tif and TCGA_..._1_mask.tif)
# and BUSI (benign (1).png with benign (1)_mask.png and, for a second lesion, _mask_1.png);
# Cellpose's 000_img.png with 000_masks.png (the images' own ending: _without_image_ending).
SIDE_MASK = re.compile(r"(?P<image>.+)_masks?(?:_\d+)?", re.IGNORECASE)


def pair_folders(root: Path, folder: Path) -> tuple[Path | None, Path | None, Path | None]:
    """The images, labels and ROI folders of a split, by name in any case (Images/ too)."""
    masks = named_folder(folder, MASK_FOLDER_NAMES)
    taken = masks.name.lower() if masks else None
    roi = named_folder(folder, tuple(n for n in ROI_FOLDER_NAMES if n != taken))
    images = named_folder(folder, IMAGE_FOLDER_NAMES)
    if images is None or masks is None:
        images, masks = _two_folders(root, folder, images, masks, roi)
    if images is None and masks is None and roi is None:
        sibling = _sibling_masks(root, folder)
        if sibling is not None:  # the split folder is the images
            return folder, sibling, None
        kinds = _case_kind_folders(folder)
        if kinds is not None:
            return (*kinds, None)
    return images, _inner_masks_folder(root, masks) if masks is not None else None, roi


def _inner_masks_folder(root: Path, folder: Path) -> Path:
    """The folder of the masks where `folder` holds no image but one folder, named as masks
    (Lizard's Lizard_Labels/Labels/, info.csv beside it): their own folder, not one class's
    of a folder per class; else `folder`."""
    inner = sub_folders(folder)
    if len(inner) == 1 and inner[0].name.lower() in MASK_FOLDER_NAMES \
            and not any(folder_image_files(root, folder, [])):
        return inner[0]
    return folder


def _case_kind_folders(folder: Path) -> tuple[Path, Path] | None:
    """The image and mask folders of a case folder whose sub-folders are all named after it
    and their kind, as PH2 lays out each case (IMD002/IMD002_Dermoscopic_Image/IMD002.bmp
    beside IMD002_lesion/IMD002_lesion.bmp and IMD002_roi/, its colour regions): the one
    kind worded as images, and the one named as masks or as the lesion they outline; None
    where the folder is not so."""
    kinds = {}
    for path in sub_folders(folder):
        kind = path.name[len(folder.name):]
        if not path.name.lower().startswith(folder.name.lower()) or kind[:1] not in ("_", "-"):
            return None
        kinds[path] = name_words(kind)
    images = [path for path, words in kinds.items() if words & IMAGE_FOLDER_WORDS]
    masks = [path for path, words in kinds.items() if path not in images
             and words & (MASK_FOLDER_WORDS | LESION_WORDS)]
    return (images[0], masks[0]) if len(images) == 1 and len(masks) == 1 else None


def _sibling_masks(root: Path, folder: Path) -> Path | None:
    """The masks of a split folder of images in a folder beside it named after it, as CamVid
    (train/ and train_labels/; SegNet's trainannot/) and the Massachusetts roads come; None
    where there is none, or `folder` is the dataset root."""
    if folder == root:
        return None
    for path in sub_folders(folder.parent):
        rest = path.name[len(folder.name):].strip(" _-.")
        if path.name.lower().startswith(folder.name.lower()) and rest \
                and named_as_masks(rest):
            return path
    return None


def _two_folders(root: Path, folder: Path, images: Path | None, masks: Path | None,
                 roi: Path | None) -> tuple[Path | None, Path | None]:
    """Image and mask folders of other names, where `folder` holds one folder not named as
    masks, the images (CVC-ClinicDB's Original/, CXR_png/, STARE's stare-images/), beside
    folders named as masks (Ground Truth/, ISIC's ISIC2018_Task1_Training_GroundTruth/): the
    masks are the first of those (STARE's first observer's labels-ah/, not labels-vk/). Of
    several folders not named as masks, the one named as images (NuInsSeg's tissue images/
    beside its distance maps/) is the images, or the first of folders named alike but for a
    number, which pair_dirs reads together (image_parts)."""
    others = [path for path in sub_folders(folder) if path != roi]
    named = sorted((path for path in others if named_as_masks(path.name)),
                   key=lambda path: _natural(path.name))
    if masks is None and not named:
        return images, masks
    rest = [path for path in others if path not in named and holds_images(root, path)]
    worded = [path for path in rest if name_words(path.name) & IMAGE_FOLDER_WORDS]
    if len(rest) > 1 and len(worded) == 1:  # NuInsSeg's tissue images/ beside distance maps/
        rest = worded
    if len(rest) > 1 and len({_numberless(path.name) for path in rest}) == 1:
        rest = [min(rest, key=lambda path: _natural(path.name))]  # HAM10000's parts: image_parts
    if masks is None and named and len(rest) == 1:
        masks = named[0]
    if images is None and masks is not None and len(rest) == 1:
        images = rest[0]
    return images, masks


def image_parts(images_dir: Path) -> list[Path]:
    """The images folder and those beside it named as it but for a number, in natural order,
    read as one folder: HAM10000 splits its photos into HAM10000_images_part_1/ and _part_2/
    beside its one folder of segmentations."""
    shape = _numberless(images_dir.name)
    if shape == images_dir.name:
        return [images_dir]
    return sorted((path for path in sub_folders(images_dir.parent)
                   if _numberless(path.name) == shape), key=lambda path: _natural(path.name))


def _numberless(name: str) -> str:
    return re.sub(r"\d+", "#", name.lower())


def holds_images(root: Path, folder: Path) -> bool:
    """Whether `folder` holds an image file, in it or below (Montgomery's ClinicalReadings/
    holds text)."""
    return any(folder_image_files(root, folder, [], recursive=True))


def named_as_masks(name: str) -> bool:
    words = name_words(name)
    return bool(words & MASK_FOLDER_WORDS) or {"ground", "truth"} <= words


def sided_class_names(names: list[str]) -> list[str]:
    """The class names that name a side, where both sides have one (leftMask, rightMask;
    left lung, right lung); else []."""
    sides = {name: name_words(name) & {"left", "right"} for name in names}
    sided = [name for name, side in sides.items() if side]
    found = set().union(*sides.values())
    return sided if found == {"left", "right"} else []


def name_words(name: str) -> set[str]:
    """The lower-case words of a folder or class name: 'ManualMask' and 'Manual_mask' as
    manual, mask."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    return set(re.split(r"[^a-z0-9]+", spaced.lower()))


def pair_folder(root: Path, folder: Path, odd: list[Path]) -> list[Pair]:
    images_dir, masks_dir, roi_dir = pair_folders(root, folder)
    if images_dir is None and masks_dir is None:
        pairs = array_pairs(root, folder, odd) or _side_by_side_pairs(root, folder, odd) \
            or _case_folder_pairs(root, folder, odd) \
            or _channel_case_pairs(root, folder, odd) or _named_case_pairs(root, folder, odd) \
            or _numbered_pairs(root, folder, odd)
        if pairs:
            return pairs
        raise VisionsuiteError(f"{folder}: expected images/ and masks/ folders, or masks beside "
                               "their images named after them (21.png and 21_mask.png)")
    for needed, name in ((images_dir, "images"), (masks_dir, "masks")):
        if needed is None:
            raise VisionsuiteError(f"{folder}: expected images/ and masks/ folders ({name}/ "
                                   "is missing)")
    return pair_dirs(root, images_dir, masks_dir, roi_dir, odd)


def pair_dirs(root: Path, images_dir: Path, masks_dir: Path, roi_dir: Path | None,
              odd: list[Path]) -> list[Pair]:
    """The pairs of an images folder and its masks (and ROI) folder, by stem."""
    # errors name the folder of both, else the images' (mmsegmentation's img_dir/train/)
    folder = images_dir.parent if images_dir.parent == masks_dir.parent else images_dir
    images = _parts_by_stem(root, image_parts(images_dir), odd)
    below = not images and any(sub_folders(images_dir))
    if below:  # images in sub-folders (REFUGE's Training400/Glaucoma/), masks likewise
        images = _by_stem(root, images_dir, odd, recursive=True)
    if not images:
        others = [path for path in odd if path.parent == images_dir]
        raise VisionsuiteError(f"{images_dir}: no images in the folder{other_files_note(others)}")
    found = _by_stem(root, masks_dir, odd, recursive=below)
    classes = {} if found else _class_folder_masks(root, masks_dir, set(images), odd)
    if not found and not classes:
        others = [path for path in odd if path.parent == masks_dir]
        raise VisionsuiteError(f"{masks_dir}: no masks in the folder{other_files_note(others)}")
    images, channels = _first_channels(images, set(found))
    masks = _by_image_stem(found, set(images)) if found else _first_of_classes(classes)
    beside = _files_of_images(set(images) - set(masks), set(masks) & set(images))
    side_files: dict[str, list[Path]] = {}
    for stem, base in beside.items():  # ISIC 2017's superpixels, left out
        side_files.setdefault(base, []).append(images.pop(stem))
    lonely_images = sorted(set(images) - set(masks))
    lonely_masks = sorted(set(masks) - set(images))
    if lonely_images or lonely_masks:
        parts = []
        if lonely_images:
            parts.append(f"{len(lonely_images)} image(s) without a mask ({_some(lonely_images)})")
        if lonely_masks:
            parts.append(f"{len(lonely_masks)} mask(s) without an image ({_some(lonely_masks)})")
        raise VisionsuiteError(f"{folder}: unpaired files: {'; '.join(parts)} (a mask pairs "
                               "with the image of its name, e.g. 21.tif and 21.gif, of its name "
                               "less an ending all masks share, e.g. 21_mask.gif, or of the "
                               "number in its name when each number names one image and mask)")
    rois = _by_image_stem(_by_stem(root, roi_dir, odd), set(images)) if roi_dir else None
    if rois is not None:
        missing = sorted(set(images) - set(rois))
        if missing:
            raise VisionsuiteError(f"{roi_dir}: no region-of-interest mask for "
                                   f"{len(missing)} image(s) ({_some(missing)})")
    return [Pair(images[stem], masks[stem], rois[stem] if rois else None,
                 left_out=tuple(side_files.get(stem, ())), channels=channels.get(stem, ()),
                 class_masks=tuple((name, of_class.get(stem))
                                   for name, of_class in classes.items()))
            for stem in sorted(images, key=_natural)]


def _files_of_images(unpaired: set[str], paired: set[str]) -> dict[str, str]:
    """Images without a mask that are files of a paired image, named after it with an ending,
    as ISIC 2017 keeps each photo's superpixels beside it (ISIC_0000000_superpixels.png beside
    ISIC_0000000.jpg): each one's paired image (the longest name)."""
    found = {}
    for stem in unpaired:
        bases = [stem[:cut] for cut, char in enumerate(stem)
                 if char == "_" and stem[:cut] in paired]
        if bases:
            found[stem] = bases[-1]
    return found


def _parts_by_stem(root: Path, parts: list[Path], odd: list[Path]) -> dict[str, Path]:
    """_by_stem of the folders of image_parts, as one; a stem in two of them is an error."""
    images: dict[str, Path] = {}
    for part in parts:
        found = _by_stem(root, part, odd, series=True)
        twice = sorted(set(found) & set(images))
        if twice:
            raise VisionsuiteError(f"{part}: the stem '{twice[0]}' is also in "
                                   f"{images[twice[0]].parent.name}/; pairing is by stem")
        images.update(found)
    return images


def _class_folder_masks(root: Path, masks_dir: Path, image_stems: set[str], odd: list[Path]
                        ) -> dict[str, dict[str, Path]]:
    """Masks in a folder per class, where `masks_dir` holds folders of masks rather than
    masks (Montgomery's ManualMask/leftMask/ and rightMask/, the SCR's masks/heart/, ...): the
    image stem -> mask of each class folder, in natural order of their names; {} where none."""
    classes = {}
    for folder in sorted(sub_folders(masks_dir), key=lambda path: _natural(path.name)):
        scratch: list[Path] = []
        found = _by_stem(root, folder, scratch)
        if found:
            odd += scratch
            classes[folder.name] = _by_image_stem(found, image_stems)
    return classes


def _first_of_classes(classes: dict[str, dict[str, Path]]) -> dict[str, Path]:
    """Each image's first mask among the class folders' (pairing needs one per image)."""
    first: dict[str, Path] = {}
    for of_class in classes.values():
        for stem, path in of_class.items():
            first.setdefault(stem, path)
    return first


def _case_folder_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per image, each with images/ and masks/, as the 2018 Data Science Bowl's
    nuclei come (stage1_train/<id>/images/<id>.png, masks/ of one file per nucleus), or with
    folders named after it (PH2: _case_kind_folders): a case of one image pairs it with all
    its masks, merged, and leaves out its other folders (PH2's <case>_roi/); other cases
    pair as a split folder does. None where no sub-folder holds images and masks."""
    cases = {path: pair_folders(root, path) for path in sub_folders(folder)}
    cases = {case: found for case, found in cases.items() if all(found[:2])}
    if not cases:
        return None
    pairs = []
    for case, (images_dir, masks_dir, _) in cases.items():
        scratch: list[Path] = []  # the files of no image format, counted once
        images = _by_stem(root, images_dir, scratch)
        masks = [path for _, path in sorted(_by_stem(root, masks_dir, scratch).items(),
                                            key=lambda item: _natural(item[0]))]
        if len(images) == 1 and masks:
            odd += scratch
            others = [path for path in sub_folders(case) if path not in (images_dir, masks_dir)]
            pairs.append(Pair(next(iter(images.values())), masks[0], more_masks=tuple(masks[1:]),
                              left_out=tuple(others)))
        else:
            pairs += pair_folder(root, case, odd)
    return pairs


def _named_case_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per case holding a volume named as an image and one named as its labels, as
    KiTS comes (case_00000/imaging.nii.gz and segmentation.nii.gz); its other volumes (KiTS21's
    aggregated_MAJ_seg.nii.gz, ...) are left out. None unless the first case folder is such;
    after it, a case without the two is an error naming it."""
    pairs: list[Pair] = []
    for case in sub_folders(folder):
        scratch: list[Path] = []
        volumes = {file_stem(path).lower(): path
                   for path in folder_image_files(root, case, scratch) if is_volume(path)}
        image = next((volumes[name] for name in CASE_IMAGE_NAMES if name in volumes), None)
        labels = next((volumes[name] for name in CASE_LABEL_NAMES if name in volumes), None)
        if image is None or labels is None:
            if not pairs:
                return None
            raise VisionsuiteError(f"{case}: expected an image volume and its labels, as "
                                   f"{pairs[0].image.parent.name} has ({pairs[0].image.name}, "
                                   f"{pairs[0].mask.name})")
        odd += scratch
        pairs.append(Pair(image, labels, left_out=tuple(
            path for path in volumes.values() if path not in (image, labels))))
    return pairs or None


def _numbered_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """Image and label files side by side that share a number, the labels named so, as LiTS
    comes (volume-0.nii with segmentation-0.nii, in Training Batch 1/ and 2/); None where the
    files do not all pair so."""
    odd_here: list[Path] = []
    images: dict[tuple[Path, str], Path] = {}
    labels: dict[tuple[Path, str], Path] = {}
    for path in folder_image_files(root, folder, odd_here, recursive=True):
        match = NUMBERED_FILE.fullmatch(file_stem(path))
        if match is None:
            return None
        found = labels if match["word"].lower() in CASE_LABEL_NAMES else images
        if (path.parent, match["number"]) in found:
            return None
        found[path.parent, match["number"]] = path
    if not labels or set(images) != set(labels):
        return None
    odd += odd_here
    return [Pair(images[key], labels[key])
            for key in sorted(images, key=lambda key: (str(key[0]), int(key[1])))]


def _channel_case_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """A folder per case of NIfTI volumes named after it, one per MRI channel and one of
    labels, as BraTS comes (BraTS2021_00000/BraTS2021_00000_flair.nii.gz, _t1, _t1ce, _t2 and
    _seg; BraTS 2023's -t2f, -t1n, -t1c, -t2w and -seg): a pair per case, its channels in the
    name order of their endings. None unless the first case folder is such; after it, a case
    of other endings is an error naming it."""
    pairs: list[Pair] = []
    first: tuple[Path, list[str]] | None = None
    for case in sub_folders(folder):
        scratch: list[Path] = []
        files = case_volumes(case, folder_image_files(root, case, scratch))
        labels = [ending for ending in files or {} if ending in CASE_LABEL_ENDINGS]
        channels = sorted(set(files or {}) - set(labels))
        if first is None and (len(labels) != 1 or not channels):
            return None
        first = first or (case, channels)
        if len(labels) != 1 or channels != first[1]:
            raise VisionsuiteError(
                f"{case}: expected the files {case.name}_<channel>.nii.gz of "
                f"{', '.join(first[1])} and one {case.name}_seg.nii.gz of labels, as "
                f"{first[0].name} has; found {', '.join(sorted(files or {})) or 'none'}")
        odd += scratch
        pairs.append(Pair(files[channels[0]], files[labels[0]],
                          channels=tuple(files[ending] for ending in channels[1:])))
    return pairs or None


def case_volumes(case: Path, paths: list[Path]) -> dict[str, Path] | None:
    """The NIfTI files of a case folder by the ending after its name ('flair' of
    BraTS2021_00000_flair.nii.gz); None where a file is not so named."""
    found = {}
    for path in paths:
        stem = file_stem(path)
        ending = stem[len(case.name) + 1:]
        if not is_volume(path) or not ending or case_before(stem, ending) != case.name:
            return None
        found[ending.lower()] = path
    return found


def _first_channels(images: dict[str, Path], mask_stems: set[str]
                    ) -> tuple[dict[str, Path], dict[str, tuple[Path, ...]]]:
    """nnU-Net's images, one file per channel (case_0000.nii.gz, case_0001.nii.gz for
    labelsTr/case.nii.gz): each case's first channel as its image, keyed by the case, and
    its further channels in order. Other images as they are. Every case must have the same
    channels, numbered from 0000 on."""
    matches = {stem: CHANNEL_FILE.fullmatch(stem) for stem in images}
    cases = {m["case"] for m in matches.values() if m}
    if set(images) & mask_stems or not all(matches.values()) or not cases <= mask_stems \
            or any(f"{case}_0000" not in images for case in cases):
        return images, {}
    numbers: dict[str, list[str]] = {}
    for stem in sorted(images):
        numbers.setdefault(matches[stem]["case"], []).append(matches[stem]["channel"])
    expected = max(numbers.values(), key=len)
    for case in sorted(numbers, key=_natural):
        if numbers[case] != [f"{i:04d}" for i in range(len(expected))]:
            raise VisionsuiteError(
                f"{images[f'{case}_0000'].parent}: case {case} has the channel files "
                f"_{', _'.join(numbers[case])}, where every case needs "
                f"_0000 to _{len(expected) - 1:04d} (one file per channel)")
    others = {case: tuple(images[f"{case}_{number}"] for number in numbers[case][1:])
              for case in cases}
    return {case: images[f"{case}_0000"] for case in cases}, others


def holds_array_pairs(root: Path, folder: Path) -> bool:
    """Whether the first image file below `folder` holds an image and its mask (array_pairs
    reads them all)."""
    first = next(folder_image_files(root, folder, [], recursive=True), None)
    return first is not None and is_array_file(first) and holds_pair(first)


def array_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """The array files below `folder` that each hold an image and its mask (core/arrays.py:
    Synapse's case0005_slice000.npz, Figshare's 1.mat), each its own pair with the case it
    names (Figshare's PID); None where any image file below it is not such a file."""
    odd_here: list[Path] = []
    files = []
    for path in folder_image_files(root, folder, odd_here, recursive=True):
        if not (is_array_file(path) and holds_pair(path)):
            return None
        files.append(path)
    if not files:
        return None
    odd += odd_here
    return [Pair(path, path, case=case_of(path)) for path in sorted(files, key=lambda path: (
        str(path.parent), _natural(file_stem(path))))]


def _side_by_side_pairs(root: Path, folder: Path, odd: list[Path]) -> list[Pair] | None:
    """Pairs of masks saved beside their images (SIDE_MASK) anywhere below `folder`, or None
    where no file is named as such a mask."""
    images: dict[tuple[Path, str], Path] = {}
    masks: dict[tuple[Path, str], list[Path]] = {}
    odd_here: list[Path] = []
    for path in folder_image_files(root, folder, odd_here, recursive=True):
        stem = file_stem(path)
        match = SIDE_MASK.fullmatch(stem)
        if match:
            masks.setdefault((path.parent, match["image"]), []).append(path)
        elif (path.parent, stem) in images:
            raise VisionsuiteError(f"{path.parent}: two images with the stem '{stem}' "
                                   f"({images[path.parent, stem].name}, {path.name})")
        else:
            images[path.parent, stem] = path
    if not masks:
        return _pairs_by_ending(images, odd, odd_here)
    odd += odd_here
    if images and set(images) != set(masks):
        images = _without_image_ending(images, set(masks)) or images
    lonely_images = sorted(str(images[key].relative_to(folder)) for key in images
                           if key not in masks)
    lonely_masks = sorted(str(found[0].relative_to(folder)) for key, found in masks.items()
                          if key not in images)
    if lonely_images or lonely_masks:
        parts = [f"{len(found)} {what} ({_some(found)})"
                 for found, what in ((lonely_images, "image(s) without a <name>_mask beside "
                                      "them"), (lonely_masks, "mask(s) without their image"))
                 if found]
        raise VisionsuiteError(f"{folder}: unpaired files: {'; '.join(parts)}")
    return [Pair(images[key], found[0], more_masks=tuple(found[1:]))
            for key, found in sorted(masks.items(),
                                     key=lambda item: (str(item[0][0]), _natural(item[0][1])))]


def _without_image_ending(images: dict[tuple[Path, str], Path],
                          masks: set[tuple[Path, str]]) -> dict[tuple[Path, str], Path] | None:
    """The images by their stems less an ending that they all have, where that pairs every
    mask with an image: DeepGlobe's 100694_sat.jpg with 100694_mask.png; None where no such
    ending does."""
    _, stem = next(iter(images))
    for cut in (i for i, char in enumerate(stem) if char == "_" and i > 0):
        ending = stem[cut:]
        if all(name.endswith(ending) and len(name) > len(ending) for _, name in images):
            cut_off = {(parent, name[:-len(ending)]): path
                       for (parent, name), path in images.items()}
            if masks <= set(cut_off):
                return cut_off
    return None


def _pairs_by_ending(images: dict[tuple[Path, str], Path], odd: list[Path],
                     odd_here: list[Path]) -> list[Pair] | None:
    """Masks beside their images named after them with an ending other than _mask, as
    CHASE_DB1 comes (Image_01L.jpg, Image_01L_1stHO.png, Image_01L_2ndHO.png): files named
    after another with an ending are labels, and an ending that every image has a file of
    names its masks; of several (two observers'), the first, as DRIVE, STARE and CHASE_DB1
    results are scored on the first observer's. The other labels are left out. Images of an
    ending of their own that no image with labels has are left out too, as ACDC keeps each
    patient's unlabelled cine (patient001_4d.nii.gz) beside the frames labelled
    (patient001_frame01.nii.gz, patient001_frame01_gt.nii.gz). None where no ending pairs
    every other image."""
    endings: dict[str, set] = {}
    for parent, stem in images:
        for cut in (i for i, char in enumerate(stem) if char == "_" and i > 0):
            if (parent, stem[:cut]) in images:
                endings.setdefault(stem[cut:], set()).add((parent, stem[:cut]))
    labels = {(parent, stem) for parent, stem in images
              if any(stem.endswith(end) and (parent, stem[:-len(end)]) in images
                     for end in endings)}
    bases = set(images) - labels
    full = sorted((end for end, found in endings.items() if found == bases), key=_natural)
    unlabelled: set = set()
    if bases and not full:  # ACDC's cines
        full = sorted((end for end, found in endings.items()
                       if _one_kind_apart(bases - found, found)), key=_natural)
        unlabelled = bases - endings[full[0]] if full else set()
    if not bases or not full:
        return None
    odd += odd_here
    others = sorted(set(endings) - {full[0]}, key=_natural)
    apart = {parent: [images[key] for key in sorted(unlabelled) if key[0] == parent]
             for parent, _ in unlabelled}
    pairs = [Pair(images[key], images[key[0], key[1] + full[0]],
                  left_out=tuple(images[key[0], key[1] + end] for end in others
                                 if (key[0], key[1] + end) in images)
                  + tuple(apart.pop(key[0], [])))
             for key in sorted(bases - unlabelled,
                               key=lambda key: (str(key[0]), _natural(key[1])))]
    return pairs


def _one_kind_apart(unlabelled: set, labelled: set) -> bool:
    """Whether images without labels are of a kind of their own: two or more, their names
    all ending as no labelled image's does (ACDC's _4d), not a mask or two gone missing."""
    endings = {stem[stem.rfind("_"):] if "_" in stem else None for _, stem in unlabelled}
    if len(unlabelled) < 2 or len(endings) != 1 or None in endings:
        return False
    ending = next(iter(endings))
    return not any(stem.endswith(ending) for _, stem in labelled)


def _by_stem(root: Path, folder: Path, odd: list[Path], series: bool = False,
             recursive: bool = False) -> dict[str, Path]:
    """The image files of `folder` (`recursive`: and of its sub-folders) by stem; with
    `series`, also its sub-folders that hold a DICOM series each, by the sub-folder's name
    (`images/case1/` for `masks/case1.nii.gz`)."""
    found: dict[str, Path] = {}
    folders = [path for path in sorted(folder.iterdir())
               if series and path.is_dir() and holds_data(path.name)]
    for sub in folders:
        inside(root, sub.relative_to(root))  # a link out of the dataset is refused
    for path in [*folder_image_files(root, folder, odd, recursive=recursive),
                 *(sub for sub in folders if series_folder(sub) is not None)]:
        stem = file_stem(path)
        if stem in found:
            raise VisionsuiteError(f"{folder}: two files with the stem '{stem}' "
                                   f"({found[stem].name}, {path.name}); pairing is by stem")
        found[stem] = path
    return found


def _by_image_stem(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path]:
    """Masks keyed by the stem of the image each belongs to, by the first rule that pairs them
    all: their own stem; their stem less one ending they all share (ISIC's `_segmentation`,
    Carvana's and DRIVE's field-of-view `_mask`); the first number in their names, where each
    number is one image's and one mask's (DRIVE's `21_training.tif`, `21_manual1.gif`); a lone
    array file named as images beside a lone one named as masks (PanNuke's images.npy and
    masks.npy, each a stack of slices)."""
    if not found or set(found) & image_stems:
        return found
    return _by_shared_ending(found, image_stems) or _by_number(found, image_stems) or \
        _stacks_by_name(found, image_stems) or found


def _stacks_by_name(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path] | None:
    """The one mask keyed by the one image's stem where they are array files named as images
    and as masks (IMAGE_NAMES, LABEL_NAMES); None otherwise."""
    if len(found) != 1 or len(image_stems) != 1:
        return None
    (stem, path), image = *found.items(), next(iter(image_stems))
    named = image.lower() in IMAGE_NAMES and stem.lower() in LABEL_NAMES
    return {image: path} if named and is_array_file(path) else None


def _by_shared_ending(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path] | None:
    shared: set[str] | None = None
    for stem in found:
        endings = {stem[cut:] for cut in range(1, len(stem)) if stem[:cut] in image_stems}
        shared = endings if shared is None else shared & endings
        if not shared:
            return None
    if len(shared) != 1:
        return None
    ending = shared.pop()
    return {stem[:-len(ending)]: path for stem, path in found.items()}


def _by_number(found: dict[str, Path], image_stems: set[str]) -> dict[str, Path] | None:
    images = _unique_numbers(image_stems)
    masks = _unique_numbers(found)
    if images is None or masks is None or not set(masks) <= set(images):
        return None
    return {images[number]: found[stem] for number, stem in masks.items()}


def _unique_numbers(stems) -> dict[int, str] | None:
    """{first number in the name: stem}, or None when a name has none or two share one."""
    numbered: dict[int, str] = {}
    for stem in stems:
        match = re.search(r"\d+", stem)
        if match is None or int(match.group()) in numbered:
            return None
        numbered[int(match.group())] = stem
    return numbered


def _natural(stem: str):
    """Sort key: '2' before '10'."""
    return [int(part) if part.isdigit() else part
            for part in re.split(r"(\d+)", stem)]


def _some(stems: list[str], count: int = 3) -> str:
    return ", ".join(stems[:count]) + (", ..." if len(stems) > count else "")


def case_before(stem: str, ending: str) -> str | None:
    """<case> of a stem <case>_<ending> or <case>-<ending> (the ending in any case)."""
    if len(stem) > len(ending) + 1 and stem.lower().endswith(ending.lower()) \
            and stem[-len(ending) - 1] in "_-":
        return stem[:-len(ending) - 1]
    return None
