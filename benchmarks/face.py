"""Face benchmark: the shipped recipe trained from scratch, embedding latency, every TFLite
variant.

    python benchmarks/face.py --data ../shared/datasets/face/orl [--run RUN]

1. Training: a full `visionsuite train face` with the shipped configs/face.yaml (skipped when
   --run names a finished run): wall time, training images/s, and on the held-out identities
   (ORL: s31-s40, all 4950 pairs of their 100 images) verification ROC AUC, TAR at FAR 1e-2 and
   1e-3, EER, accuracy at the saved threshold, leave-one-out rank-1. The run keeps the epoch of
   best TAR on those same people, so a second row gives the last epoch's figures, chosen by
   nothing. Raw pixels compared by cosine are the baseline row.
2. Export: none, float16, dynamic and int8: size, the metrics of Keras and of the .tflite, the
   mean cosine similarity of their embeddings, embedding latency per face at 1 thread (LiteRT,
   median of 100 runs), and for int8 the mean cosine between MediaPipe ImageEmbedder's
   embeddings and Keras's. Also the Keras model's latency per face (batch 1, 1 thread) and
   the face finder's (OpenCV Haar cascade) per photo.
3. Faces found in photos: the held-out images given to the face finder, each face found cut
   out square around its box (1.3x its side) or framed as the training crops frame their
   faces (inference.json's crop_framing), against the same people's crops used whole: ROC
   AUC and TAR at FAR 1e-2 over every pair but an image with itself, and the mean cosine of
   same-person pairs. That is what `identify` meets: a face found in a photo, against a
   gallery of crops. For a model trained on face crops used whole (ORL).
4. LFW's protocol on the held-out people: a seeded pairs file in LFW's layout (10 folds of
   30 same- and 30 different-person pairs of the held-out images), scored by `visionsuite
   evaluate --pairs` with the Keras model and the int8 file: LFW's accuracy (each fold at
   the threshold most accurate on the other nine; mean and standard error), ROC AUC, and the
   accuracy at the run's own threshold.
Prints tables, writes JSON (default benchmarks/results/face.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from visionsuite.quiet import import_tensorflow_quietly  # noqa: E402

import_tensorflow_quietly()  # first: TensorFlow's C++ start-up notices stay off the terminal

import numpy as np  # noqa: E402

from common import machine_facts, timed_training, training_or_finished_run  # noqa: E402
from visionsuite.core.benchmark import benchmark_models, time_tflite  # noqa: E402
from visionsuite.core.evaluate import load_run_config  # noqa: E402
from visionsuite.core.export import QUANTIZATIONS, export_all  # noqa: E402
from visionsuite.core.files import write_json  # noqa: E402
from visionsuite.core.models import KerasPredictor, load_keras_model, resolve_model  # noqa: E402
from visionsuite.core.report import table  # noqa: E402
from visionsuite.tasks.face import TASK  # noqa: E402
from visionsuite.tasks.face.metrics import face_metrics, unit  # noqa: E402

KEYS = ("roc_auc", "tar_at_far_0.01", "tar_at_far_0.001", "eer", "rank1", "accuracy",
        "threshold")


def summary(run: Path) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    return {key: round(metrics[key], 4) for key in KEYS}


def last_epoch_row(run: Path) -> dict:
    """The last epoch's held-out metrics, from history.csv. The run keeps the epoch of best
    TAR@FAR1e-2 on the held-out people, who are ORL's test people (it has no other held-out
    folder): that choice flatters the kept figures, and this row shows by how much."""
    import csv

    with open(run / "history.csv", newline="") as file:
        last = list(csv.DictReader(file))[-1]
    kept = json.loads((run / "state.json").read_text())["best_epoch"] + 1
    return {"model": f"visionsuite, last epoch ({int(last['epoch']) + 1}; kept: {kept})",
            **{key: round(float(last[f"val_{key}"]), 4)
               for key in ("roc_auc", "tar_at_far_0.01", "eer", "rank1")}}


def raw_pixel_baseline(data) -> dict:
    pixels = data.val.images.reshape(len(data.val), -1).astype(np.float64)
    metrics = face_metrics(pixels, np.asarray(data.val.targets))
    return {"model": "raw pixels (cosine)", **{k: round(metrics[k], 4) for k in KEYS[:-2]}}


def mediapipe_cosine(tflite: Path, model, images: np.ndarray) -> float:
    from visionsuite.core.mediapipe_tasks import mediapipe_embeddings

    reference = unit(KerasPredictor(model).predict(images))
    phone = unit(mediapipe_embeddings(tflite, images))
    return round(float((reference * phone).sum(1).mean()), 4)


def export_table(run: Path, runs: int, data) -> list[dict]:
    model = load_keras_model(run / "model.keras")
    rows = []
    for report in export_all(run, list(QUANTIZATIONS)):  # into RUN/exported
        quantize = report["quantize"]
        path = Path(report["file"])
        row = {"model": f"tflite {quantize}", "size_mb": round(report["size_bytes"] / 2**20, 3),
               "keras_auc": report["keras"]["roc_auc"], "tflite_auc": report["tflite"]["roc_auc"],
               "keras_tar_1e-2": report["keras"]["tar_at_far_0.01"],
               "tflite_tar_1e-2": report["tflite"]["tar_at_far_0.01"],
               "tflite_rank1": report["tflite"]["rank1"],
               "mean_cosine_to_keras": round(report["agreement"], 4),
               "ms_per_face_1t": round(float(np.median(time_tflite(path, 1, runs))), 3)}
        if quantize == "int8":
            channels = data.val.images.shape[-1]
            rgb = data.val.images if channels == 3 else np.repeat(data.val.images, 3, -1)
            row["mediapipe_mean_cosine"] = mediapipe_cosine(path, model, rgb)
        rows.append(row)
    for row in rows:
        row["size_vs_float32"] = round(row["size_mb"] / rows[0]["size_mb"], 3)
        row["speedup_1t"] = round(rows[0]["ms_per_face_1t"] / row["ms_per_face_1t"], 2)
    return rows


def face_finder_ms(data, runs: int = 50) -> float:
    """Haar face (and eye) finding per photo, on the val images at their stored size."""
    from visionsuite.tasks.face.faces import load_face

    paths = data.val.paths[:runs]
    started = time.perf_counter()
    for path in paths:
        load_face(path, 112, 3, detect=True)
    return round((time.perf_counter() - started) * 1000 / len(paths), 2)


def found_faces_table(run: Path, data) -> list[dict]:
    from visionsuite.tasks.face.commands import load_embedder
    from visionsuite.tasks.face.faces import SQUARE
    from visionsuite.tasks.face.metrics import roc_auc, threshold_at_far

    embedder = load_embedder(run, detect=True)
    if embedder.framing is None:
        return []
    framed, embedder.crop_shape = embedder.framing, None  # find faces in crops of that size
    people = np.asarray(data.val.targets)
    whole = unit(embedder.predictor.predict(data.val.images))
    rows = []
    for name, framing in (("whole crops (reference)", None), ("found, square", SQUARE),
                          ("found, framed as the crops", framed)):
        if framing is None:
            probes, kept = whole, list(range(len(whole)))
        else:
            embedder.framing = framing
            probes, kept, _ = embedder.embed_files(data.val.paths, desc=name)
        scores = probes @ whole.T
        same = people[kept][:, None] == people[None]
        itself = np.asarray(kept)[:, None] == np.arange(len(whole))[None]
        positives, negatives = scores[same & ~itself], scores[~same]
        rows.append({"faces": name, "found": f"{len(kept)}/{len(whole)}",
                     "roc_auc": round(roc_auc(positives, negatives), 4),
                     "tar_at_far_0.01": round(float(
                         (positives >= threshold_at_far(negatives, 0.01)).mean()), 4),
                     "mean_same_person_cosine": round(float(positives.mean()), 4)})
    return rows


def lfw_layout_pairs(paths: list[Path], people: np.ndarray, folds: int = 10,
                     per_fold: int = 30, seed: int = 0) -> str:
    """A pairs file in LFW's layout (header, then each fold's same-person pairs and as many
    different-person ones) of `paths`, lines 'IMAGE_A IMAGE_B 1|0' relative to their people's
    folder; no pair is drawn twice."""
    from itertools import combinations

    rng = np.random.default_rng(seed)
    root = paths[0].parent.parent
    pairs = list(combinations(range(len(paths)), 2))
    same = [pairs[i] for i in rng.permutation(len(pairs)) if people[pairs[i][0]] ==
            people[pairs[i][1]]][:folds * per_fold]
    different = [pairs[i] for i in rng.permutation(len(pairs)) if people[pairs[i][0]] !=
                 people[pairs[i][1]]][:folds * per_fold]
    lines = [f"{folds} {per_fold}"]
    for fold in range(folds):
        for chosen, label in ((same, 1), (different, 0)):
            lines += [f"{paths[a].relative_to(root)} {paths[b].relative_to(root)} {label}"
                      for a, b in chosen[fold * per_fold:(fold + 1) * per_fold]]
    return "\n".join(lines) + "\n"


def lfw_protocol_table(run: Path, data, workdir: Path) -> list[dict]:
    from visionsuite.tasks.face.pairs import evaluate_pairs

    workdir.mkdir(parents=True, exist_ok=True)
    file = workdir / "lfw_layout_pairs.txt"
    file.write_text(lfw_layout_pairs(data.val.paths, np.asarray(data.val.targets)))
    rows = []
    for model in [run] + sorted((run / "exported").glob("*int8.tflite")):
        result = evaluate_pairs(model, file, data.val.paths[0].parent.parent)
        rows.append({"model": "keras" if model == run else "tflite int8",
                     "pairs": result["pairs"], "folds": len(result["folds"]),
                     "lfw_accuracy": round(result["cv_accuracy"], 4),
                     "standard_error": round(result["cv_accuracy_se"], 4),
                     "roc_auc": round(result["roc_auc"], 4),
                     "accuracy_at_run_threshold": round(result["accuracy"], 4)})
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/datasets/face/orl")
    parser.add_argument("--run", help="a finished run to export instead of training one")
    parser.add_argument("--runs", type=int, default=100, help="timed invocations per file")
    parser.add_argument("--workdir", default="runs/benchmark")
    parser.add_argument("--output", default="benchmarks/results/face.json")
    args = parser.parse_args()
    earlier = json.loads(Path(args.output).read_text()) if Path(args.output).is_file() else {}
    results = {"data": args.data, "machine": machine_facts()}
    run, results["training"] = training_or_finished_run(
        args.run, earlier, args.data, args.workdir,
        lambda data, workdir: timed_training("face", data, workdir, summary), summary)
    source = resolve_model(run)
    data = TASK.load_data(load_run_config(source), train=False)
    results["baseline"] = raw_pixel_baseline(data)
    results["last_epoch"] = last_epoch_row(run)
    print("\ntraining with configs/face.yaml (held-out identities)\n"
          + table([{"model": "visionsuite", **results["training"]}, results["last_epoch"],
                   results["baseline"]]), flush=True)
    results["export"] = export_table(run, args.runs, data)
    results["latency"] = {
        # In a child process, where TensorFlow can still be held to 1 thread.
        "keras_ms_per_face_1t": benchmark_models([str(run / "model.keras")], [1],
                                                 args.runs)[0]["p50_ms"],
        "face_finder_ms_per_photo": face_finder_ms(data)}
    print("\nexport (metrics on the held-out identities; latency per face at 1 thread)\n"
          + table(results["export"]) + "\n\n" + table([results["latency"]]))
    results["found_faces"] = found_faces_table(run, data)
    if results["found_faces"]:
        print("\nfaces found in the held-out photos, against their crops used whole\n"
              + table(results["found_faces"]))
    results["lfw_protocol"] = lfw_protocol_table(run, data, Path(args.workdir))
    print("\nLFW's protocol on the held-out people (`evaluate --pairs`)\n"
          + table(results["lfw_protocol"]))
    write_json(args.output, results)
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
