"""nnU-Net's post-processing: keep only the largest connected component of a structure (one
class, or all foreground classes together), where that raises the Dice on val.

An organ, a kidney with its tumour, a field of view is one object: specks predicted away from
it are errors, and removing them is the cheapest gain in organ segmentation. Where a class is
many objects (cells, vessels' pieces, metastases) it would remove most of them, so nnU-Net
decides per structure on val, and so does training here (choose_largest_components): the
choice is saved in the run and applied by `evaluate`, `export`'s parity check and `segment`
alike. As nnU-Net, all foreground classes together are tried first, then each class; removed
pixels become class 0.

Components are 8-connected within a slice and joined across neighbouring slices where they
overlap: a volume's structure is one 3-D object (a case, as volumes are scored).
"""

from __future__ import annotations

import numpy as np

from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.segment.decode import case_members
from visionsuite.tasks.segment.mask_classes import IGNORE
from visionsuite.tasks.segment.metrics import mean_known


def label_components(mask: np.ndarray) -> np.ndarray:
    """Component numbers (0 outside) of a (S, H, W) bool mask: each slice's 8-connected
    components (OpenCV), joined where they overlap in the next slice."""
    import cv2

    labels = np.zeros(mask.shape, np.int32)
    count = 0
    for index, plane in enumerate(mask):
        found, numbers = cv2.connectedComponents(plane.astype(np.uint8), connectivity=8,
                                                 ltype=cv2.CV_32S)
        labels[index] = np.where(numbers > 0, numbers + count, 0)
        count += found - 1
    parent = np.arange(count + 1)

    def root(number: int) -> int:
        while parent[number] != number:
            parent[number] = parent[parent[number]]  # path halving keeps the chains short
            number = parent[number]
        return number

    for upper, lower in zip(labels[:-1], labels[1:]):
        both = (upper > 0) & (lower > 0)
        # each pair of overlapping components once, as one number (1-D unique sorts fast)
        pairs = np.unique(upper[both].astype(np.int64) * (count + 1) + lower[both])
        for first, second in zip(*np.divmod(pairs, count + 1)):
            first, second = root(int(first)), root(int(second))
            if first != second:
                parent[max(first, second)] = min(first, second)
    roots = np.array([root(number) for number in range(count + 1)])
    return roots[labels]


def keep_largest(classes: np.ndarray, structure: list[int]) -> np.ndarray:
    """(S, H, W) class indices with every component of `structure` (class indices taken
    together) but the largest set to class 0."""
    inside = np.isin(classes, structure)
    if not inside.any():
        return classes
    components = label_components(inside)
    sizes = np.bincount(components.ravel())
    sizes[0] = 0
    kept = classes.copy()
    kept[inside & (components != sizes.argmax())] = 0
    return kept


def keep_largest_components(cases: list[np.ndarray], structures: list[list[int]]) -> list:
    """keep_largest of each structure in turn, on each case ((S, H, W) class indices)."""
    for structure in structures:
        cases = [keep_largest(case, structure) for case in cases]
    return cases


def case_dice(predicted: list[np.ndarray], truths: list[np.ndarray], number: int) -> float | None:
    """The mean over the cases of class `number`'s Dice, over those where the truth or the
    prediction holds it (None where none does); IGNORE pixels are left out."""
    scores = []
    for found, truth in zip(predicted, truths):
        valid = truth != IGNORE
        true, guessed = (truth == number) & valid, (found == number) & valid
        total = int(true.sum() + guessed.sum())
        if total:
            scores.append(2 * int((true & guessed).sum()) / total)
    return float(np.mean(scores)) if scores else None


def choose_largest_components(predicted: list[np.ndarray], truths: list[np.ndarray],
                              count: int) -> tuple[list[list[int]], list[dict]]:
    """The structures whose largest component alone raises the val Dice, as nnU-Net chooses
    them: all foreground classes together (where there are several), then each class; kept
    where the mean of the structure's classes' case Dice rises and none of them falls.
    Returns them and each trial (structure, Dice without and with, kept)."""
    candidates = ([list(range(1, count))] if count > 2 else []) + \
        [[number] for number in range(1, count)]
    chosen, trials = [], []
    for structure in candidates:
        trial = [keep_largest(case, structure) for case in predicted]
        before = [case_dice(predicted, truths, number) for number in structure]
        after = [case_dice(trial, truths, number) for number in structure]
        pairs = [(old, new) for old, new in zip(before, after) if None not in (old, new)]
        kept = bool(pairs) and bool(np.mean([new for _, new in pairs]) > np.mean(
            [old for old, _ in pairs])) and all(new >= old for old, new in pairs)
        trials.append({"structure": structure, "dice_without": mean_known(before),
                       "dice_with": mean_known(after), "kept": kept})
        if kept:
            chosen.append(structure)
            predicted = trial
    return chosen, trials


def post_process(predicted: list[np.ndarray], truths: list[np.ndarray], paths: list[str],
                 labels: list[str], chosen: list[list[str]] | None) -> tuple[list, dict]:
    """Each image's classes with the largest components kept: of the structures `chosen`
    (class names, as saved in a run), or, where None, of those choose_largest_components
    picks on these images. Returns them and what was kept ({"keep_largest_component": the
    structures' class names, and "largest_component_trials" where chosen here})."""
    if chosen == []:  # nothing to keep: no copies of the images' classes
        return predicted, {}
    cases = case_members(paths)
    stacks = [np.stack([predicted[index] for index in members]) for members in cases]
    report = {}
    if chosen is None:
        structures, trials = choose_largest_components(
            stacks, [np.stack([truths[index] for index in members]) for members in cases],
            len(labels))
        report["largest_component_trials"] = [
            {**trial, "structure": "+".join(labels[number] for number in trial["structure"])}
            for trial in trials]
    else:
        structures = [class_numbers(structure, labels) for structure in chosen]
    if not structures:
        return predicted, report
    kept = list(predicted)
    for members, stack in zip(cases, keep_largest_components(stacks, structures)):
        for index, plane in zip(members, stack):
            kept[index] = plane
    report["keep_largest_component"] = [[labels[number] for number in structure]
                                        for structure in structures]
    return kept, report


def class_numbers(names: list[str], labels: list[str]) -> list[int]:
    """The class indices of a saved structure's class names; a name the model lacks is an
    error (a run's settings edited, or taken from another run)."""
    unknown = [name for name in names if name not in labels]
    if unknown:
        raise VisionsuiteError(f"keep_largest_component names {', '.join(unknown)}, which "
                               f"the model does not have (its classes: {', '.join(labels)})")
    return [labels.index(name) for name in names]
