"""Verification and identification metrics of face embeddings, on every pair of a split.

Verification: all pairs of images (a seeded sample of the different-person pairs where they
exceed MAX_DIFFERENT_PAIRS); a pair is accepted when its cosine similarity is at least the
threshold. FAR: fraction of different-person pairs accepted; TAR: fraction of same-person pairs
accepted. Identification: leave-one-out nearest neighbour (rank-1), over the images whose
identity has another image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

FAR_TARGETS = (1e-2, 1e-3)
# A threshold this close to 1 means the held-out people's cosines all bunch near 1: the
# embedding has (nearly) collapsed, as batch-hard triplets can early in training, and int8's
# 1/128 steps erase the differences left (ORL, 25 triplet epochs: AUC 0.93 Keras, 0.52 int8).
COLLAPSED_THRESHOLD = 0.99
HARDEST_SHOWN = 10  # rows of face_metrics' "hardest_identities"
# All pairs of N images are N^2/2: 8000 held-out faces took 2.6 GB and 13 s after every epoch.
# Beyond this many different-person pairs a seeded sample of them is scored (FAR 1e-3 still
# rests on 2000 of them), and similarities are computed ROW_BLOCK rows at a time.
MAX_DIFFERENT_PAIRS = 2_000_000
ROW_BLOCK = 1024
PAIR_BLOCK = 65536


def collapsed(metrics: dict) -> bool:
    """Whether face_metrics' best threshold says the embedding has nearly collapsed."""
    return metrics["best_threshold"] >= COLLAPSED_THRESHOLD


def same_person_scores(vectors: np.ndarray, identities: np.ndarray) -> np.ndarray:
    """Cosine of every unordered same-person pair; `vectors` are unit embeddings."""
    parts = [np.zeros(0)]
    for identity in np.unique(identities):
        mine = vectors[identities == identity]
        parts.append((mine @ mine.T)[np.triu_indices(len(mine), k=1)])
    return np.concatenate(parts)


def different_person_scores(vectors: np.ndarray, identities: np.ndarray,
                            limit: int | None = None, seed: int = 0):
    """Cosine of every unordered different-person pair, in blocks of rows; beyond `limit`
    (MAX_DIFFERENT_PAIRS) pairs, of a seeded uniform sample of `limit` of them (with
    replacement). Returns the scores and how many different-person pairs the split has."""
    limit = MAX_DIFFERENT_PAIRS if limit is None else limit
    counts = np.bincount(identities)
    total = (len(identities) * (len(identities) - 1) - int((counts * (counts - 1)).sum())) // 2
    if total <= limit:
        parts = [np.zeros(0)]
        for start in range(0, len(vectors), ROW_BLOCK):
            rows = np.arange(start, min(start + ROW_BLOCK, len(vectors)))
            keep = (np.arange(len(vectors))[None, :] > rows[:, None]) & \
                (identities[None, :] != identities[rows, None])
            parts.append((vectors[rows] @ vectors.T)[keep])
        return np.concatenate(parts), total
    rng = np.random.default_rng(seed)
    first, second = np.zeros(0, int), np.zeros(0, int)
    while len(first) < limit:  # rejection: most random pairs are of two people
        a, b = rng.integers(0, len(vectors), (2, limit))
        other = identities[a] != identities[b]
        first, second = np.concatenate([first, a[other]]), np.concatenate([second, b[other]])
    first, second = first[:limit], second[:limit]
    scores = [np.einsum("ij,ij->i", vectors[first[start:start + PAIR_BLOCK]],
                        vectors[second[start:start + PAIR_BLOCK]])
              for start in range(0, limit, PAIR_BLOCK)]
    return np.concatenate(scores), total


def unit(embeddings: np.ndarray) -> np.ndarray:
    embeddings = np.asarray(embeddings, np.float64)
    return embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """P(a same-person pair scores above a different-person pair), ties counted half."""
    ordered = np.sort(negatives)
    below = np.searchsorted(ordered, positives, side="left")
    not_above = np.searchsorted(ordered, positives, side="right")
    return float((below + not_above).sum() / (2.0 * len(positives) * len(negatives)))


def threshold_at_far(negatives: np.ndarray, far: float) -> float:
    """The lowest threshold accepting at most `far` of the different-person pairs."""
    ordered = np.sort(negatives)[::-1]
    allowed = int(np.floor(far * len(ordered)))
    if allowed >= len(ordered):
        return float(ordered[-1])
    return float(np.nextafter(ordered[allowed], np.inf))


def far_operating_points(positives: np.ndarray, negatives: np.ndarray) -> dict:
    """TAR at each of FAR_TARGETS (`tar_at_far_0.01`, ...) and the threshold it was measured
    at (`thresholds_at_far`, keyed "0.01", ...: what verify and identify --far judge by)."""
    cuts = {f"{far:g}": threshold_at_far(negatives, far) for far in FAR_TARGETS}
    return {**{f"tar_at_far_{far}": float((positives >= cut).mean())
               for far, cut in cuts.items()}, "thresholds_at_far": cuts}


def roc_curve(positives: np.ndarray, negatives: np.ndarray):
    """(FAR, TAR, thresholds) at every distinct score, thresholds decreasing."""
    scores = np.concatenate([positives, negatives])
    thresholds = np.unique(scores)[::-1]
    tar = 1.0 - np.searchsorted(np.sort(positives), thresholds, side="left") / len(positives)
    far = 1.0 - np.searchsorted(np.sort(negatives), thresholds, side="left") / len(negatives)
    return far, tar, thresholds


def equal_error_rate(positives: np.ndarray, negatives: np.ndarray) -> float:
    far, tar, _ = roc_curve(positives, negatives)
    frr = 1.0 - tar
    index = int(np.argmin(np.abs(far - frr)))
    return float((far[index] + frr[index]) / 2)


def best_threshold(positives: np.ndarray, negatives: np.ndarray) -> float:
    """The threshold of the highest balanced accuracy (mean of TAR and 1 - FAR): unlike plain
    accuracy, it does not depend on how many more different-person pairs a split has."""
    far, tar, thresholds = roc_curve(positives, negatives)
    index = int(np.argmax(tar - far))
    # Halfway to the next lower score: a margin on both sides of the chosen cut.
    lower = thresholds[index + 1] if index + 1 < len(thresholds) else thresholds[index] - 1e-3
    return float((thresholds[index] + lower) / 2)


def rank1(embeddings: np.ndarray, identities: np.ndarray) -> tuple[float, int]:
    """Leave-one-out nearest-neighbour accuracy, and over how many images."""
    vectors = unit(embeddings)
    nearest = np.empty(len(vectors), int)
    for start in range(0, len(vectors), ROW_BLOCK):
        similarity = vectors[start:start + ROW_BLOCK] @ vectors.T
        rows = np.arange(len(similarity))
        similarity[rows, start + rows] = -np.inf
        nearest[start:start + len(rows)] = similarity.argmax(axis=1)
    counts = np.bincount(identities)
    probes = counts[identities] >= 2
    hits = identities[nearest] == identities
    return (float(hits[probes].mean()) if probes.any() else 0.0), int(probes.sum())


def face_metrics(embeddings: np.ndarray, identities: np.ndarray,
                 threshold: float | None = None, names: list[str] | None = None) -> dict:
    """All metrics of a split. `threshold`: the model's saved one; without it, the best one on
    this split is used (and says so). `names`: of the identity indices, for the rows of
    "hardest_identities"."""
    vectors, identities = unit(embeddings), np.asarray(identities)
    positives = same_person_scores(vectors, identities)
    negatives, different_pairs = different_person_scores(vectors, identities)
    if not len(positives) or not len(negatives):
        from visionsuite.errors import VisionsuiteError

        raise VisionsuiteError("verification needs at least two identities with two images each")
    best = best_threshold(positives, negatives)
    used = best if threshold is None else float(threshold)
    accepted_pos, accepted_neg = positives >= used, negatives >= used
    # Different-person pairs rightly refused, counted over all of them (estimated from the
    # sample, where one was drawn).
    refused = (~accepted_neg).sum() if len(negatives) == different_pairs \
        else (1 - accepted_neg.mean()) * different_pairs
    metrics = {
        "roc_auc": roc_auc(positives, negatives),
        "eer": equal_error_rate(positives, negatives),
        "threshold": used,
        "threshold_source": "the model's" if threshold is not None else "best on this data",
        "accuracy": float((accepted_pos.sum() + refused) / (len(positives) + different_pairs)),
        "balanced_accuracy": float((accepted_pos.mean() + 1 - accepted_neg.mean()) / 2),
        "tar_at_threshold": float(accepted_pos.mean()),
        "far_at_threshold": float(accepted_neg.mean()),
        "best_threshold": best,
    }
    metrics.update(far_operating_points(positives, negatives))
    metrics["rank1"], metrics["rank1_probes"] = rank1(embeddings, identities)
    metrics["hardest_identities"] = hardest_identities(
        vectors, identities, metrics["thresholds_at_far"][f"{1e-2:g}"], names)
    metrics.update(images=int(len(identities)), identities=int(len(np.unique(identities))),
                   same_pairs=int(len(positives)), different_pairs=int(different_pairs))
    if len(negatives) < different_pairs:
        metrics["different_pairs_sampled"] = int(len(negatives))
    metrics["roc"] = roc_points(positives, negatives)
    return metrics


def roc_points(positives: np.ndarray, negatives: np.ndarray, count: int = 400) -> dict:
    """At most `count` points of the ROC curve, evenly spread over its thresholds: enough to
    plot it, few enough for metrics.json."""
    far, tar, _ = roc_curve(positives, negatives)
    keep = np.unique(np.linspace(0, len(far) - 1, min(len(far), count)).astype(int))
    return {"far": far[keep].round(6).tolist(), "tar": tar[keep].round(6).tolist()}


def hardest_identities(vectors: np.ndarray, identities: np.ndarray, cut: float,
                       names: list[str] | None = None, shown: int = HARDEST_SHOWN) -> list[dict]:
    """Where verification fails, person by person: for each identity with a same-person pair,
    how many of those pairs score below `cut` (the FAR 1e-2 threshold), their mean similarity,
    and the other person most similar to any of its images. The `shown` worst, most missed
    pairs first. `vectors`: the split's unit embeddings. (On ORL one person photographed in
    two sessions held 25 of the misses.)"""
    name = (lambda index: names[index]) if names else str
    rows = []
    for identity in np.unique(identities):
        mine = identities == identity
        count = int(mine.sum())
        if count < 2 or mine.all():
            continue
        similarity = vectors[mine] @ vectors.T  # one person's rows: memory stays small
        same = similarity[:, mine][np.triu_indices(count, k=1)]
        others = similarity[:, ~mine].max(axis=0)
        closest = int(others.argmax())
        rows.append({"identity": name(int(identity)), "same_pairs": len(same),
                     "missed_pairs": int((same < cut).sum()),
                     "mean_same_similarity": float(same.mean()),
                     "closest_other": name(int(identities[~mine][closest])),
                     "closest_other_similarity": float(others[closest])})
    rows.sort(key=lambda row: (-row["missed_pairs"], row["mean_same_similarity"]))
    return rows[:shown]


def plot_roc(curves: dict[str, dict], path: Path) -> Path:
    """ROC curves (TAR against FAR on a log axis), one per name, in one PNG."""
    from visionsuite.core.plots import _pyplot, _save

    plt = _pyplot()
    figure, axis = plt.subplots(figsize=(5.5, 4.5))
    for name, metrics in curves.items():
        far = np.maximum(np.array(metrics["roc"]["far"]), 1e-5)
        axis.plot(far, metrics["roc"]["tar"], label=f"{name} (AUC {metrics['roc_auc']:.4f})")
    for far in FAR_TARGETS:
        axis.axvline(far, color="grey", linewidth=0.6, linestyle=":")
    axis.set(xscale="log", xlim=(1e-4, 1), ylim=(0, 1.01), xlabel="false accept rate",
             ylabel="true accept rate", title="verification ROC")
    axis.legend(loc="lower right")
    axis.grid(alpha=0.3)
    _save(figure, path)
    return path
