"""The `visionsuite` command: parse, then call the Python API.

TensorFlow takes seconds to import, so every import of it, or of a module that needs it,
happens inside a command's body: `visionsuite --help` answers at once.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path

import click

from visionsuite import __version__
from visionsuite.core.splits import HELD_OUT_SPLITS
from visionsuite.errors import VisionsuiteError, first_line
from visionsuite.quiet import import_tensorflow_quietly
from visionsuite.tasks import TASK_NAMES


def friendly_errors(command=None, *, tensorflow: bool = True):
    """Turn a VisionsuiteError into one line on stderr and exit code 1, never a traceback.
    VISIONSUITE_DEBUG=1 shows the traceback of unexpected errors. Commands that need
    TensorFlow (all but `tensorflow=False` ones) import it first, quietly."""
    if command is None:
        return functools.partial(friendly_errors, tensorflow=tensorflow)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            if tensorflow:
                import_tensorflow_quietly()
            return command(*args, **kwargs)
        except VisionsuiteError as err:
            click.echo(f"error: {err}", err=True)
            sys.exit(1)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(130)
        except Exception as err:  # noqa: BLE001  the last line of defence for the user
            if os.environ.get("VISIONSUITE_DEBUG"):
                raise
            click.echo(f"error: {type(err).__name__}: {first_line(str(err))} "
                       "(set VISIONSUITE_DEBUG=1 for the traceback)", err=True)
            sys.exit(1)

    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="visionsuite")
def cli():
    """visionsuite: train, evaluate and export vision models to quantized TFLite."""


def recipe_options(command):
    """The options of `train` and `cross-validate` that make a run's config."""
    options = [
        click.argument("task", type=click.Choice(TASK_NAMES)),
        click.option("--config", "config_path", type=click.Path(),
                     help="YAML file of the keys to change from configs/TASK.yaml."),
        click.option("--data", help="Dataset folder [the config's, else the embedded default]."),
        click.option("--epochs", type=int),
        click.option("--batch-size", type=int),
        click.option("--image-size", type=int),
        click.option("--backbone", help="Backbone name, see `visionsuite models`."),
        click.option("--output", default="runs", show_default=True,
                     help="Folder of run folders."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override any config key, e.g. --set train.lr=0.001 (repeatable)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def recipe_config(task, config_path, data, epochs, batch_size, image_size, backbone, sets,
                  whole: bool = False):
    from visionsuite.config import load_config
    from visionsuite.tasks import get_task

    get_task(task)  # says clearly when a task is not available yet
    overrides = {"data.path": data, "train.epochs": epochs, "train.batch_size": batch_size,
                 "data.image_size": image_size, "model.backbone": backbone}
    return load_config(task, config_path, overrides, sets, whole=whole)


@cli.command()
@recipe_options
@click.option("--name", help="Run name [exp, exp2, ...].")
@click.option("--resume", type=click.Path(), help="Continue the run in this run folder.")
@friendly_errors
def train(task, config_path, data, epochs, batch_size, image_size, backbone, output, sets, name,
          resume):
    """Train a TASK model; prints the run folder as the last line."""
    from visionsuite.core.train import train as run_training

    if resume:
        if config_path:
            raise VisionsuiteError("--resume continues with the run's own config.yaml; "
                                   "leave out --config (overrides such as --epochs still apply)")
        config_path = os.path.join(resume, "config.yaml")
    config = recipe_config(task, config_path, data, epochs, batch_size, image_size, backbone,
                           sets, whole=bool(resume))
    run_dir = run_training(config, output=output, name=name, resume=resume)
    click.echo(str(run_dir))


@cli.command("cross-validate")
@recipe_options
@click.option("--folds", default=5, show_default=True, type=click.IntRange(2))
@click.option("--name", help="Name of the fold runs, NAME_fold0 ... [cv, cv2, ...]; again, it "
                             "keeps the folds that have finished.")
@click.option("--json", "json_path", type=click.Path(), help="Also write the table here.")
@friendly_errors
def cross_validate(task, config_path, data, epochs, batch_size, image_size, backbone, output,
                   sets, folds, name, json_path):
    """k-fold cross-validation of TASK on a dataset without a val split: one run per fold
    (each validating on its fold, training on the others), then their val metrics side by side
    with the mean and standard deviation, as `compare` shows them."""
    from visionsuite.core.crossval import cross_validate as run_folds
    from visionsuite.core.files import writable_file, write_json

    if json_path:
        writable_file(json_path, "the table", "--json")
    config = recipe_config(task, config_path, data, epochs, batch_size, image_size, backbone,
                           sets)
    _, comparison = run_folds(config, folds, output, name)
    _echo_comparison(comparison)
    if json_path:
        write_json(json_path, comparison)


def tta_option(command):
    return click.option(
        "--tta/--no-tta", default=None,
        help="Segment models: test-time augmentation, each tile's prediction averaged over "
             "the flips and quarter turns the model trained with (up to 8x slower) [as "
             "trained: data.tta].")(command)


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--data", help="Dataset folder [the run's].")
@click.option("--json", "json_path", type=click.Path(), help="Also write the metrics here.")
@click.option("--split", type=click.Choice(HELD_OUT_SPLITS), default="val", show_default=True,
              help="The held-out split: val, or test (a test/ folder, 'test' in data.yaml, "
                   "test.json).")
@click.option("--pairs", type=click.Path(),
              help="Face runs: score the verification pairs of this file instead (LFW's "
                   "pairs.txt: folds of same- and different-person pairs, LFW's accuracy "
                   "over them; or lines 'IMAGE_A IMAGE_B 1|0'), the images under --data [the "
                   "file's folder]; or an InsightFace .bin (lfw.bin, agedb_30.bin, ...), "
                   "which holds its images.")
@click.option("--detect/--no-detect", default=None,
              help="With --pairs: find and crop faces, or take the images as face crops [as "
                   "the model was trained: data.face_detect].")
@click.option("--plots", type=click.Path(file_okay=False),
              help="Also draw the split's plots in this folder, as training draws val's: "
                   "confusion matrix, PR curves or ROC, and the worst predictions beside the "
                   "truth (SPLIT_*.png; with --pairs, PAIRS_roc.png).")
@tta_option
@friendly_errors
def evaluate(run, data, json_path, split, pairs, detect, plots, tta):
    """Evaluate RUN (a run folder, a .keras or a .tflite file) on the val split, or with
    --split test on the test split that training never saw."""
    from visionsuite.core.evaluate import evaluate as run_evaluation
    from visionsuite.core.report import detail_text, table
    from visionsuite.tasks import get_task

    if pairs:
        from visionsuite.tasks.face.pairs import evaluate_pairs

        if split != "val" or tta is not None:
            raise VisionsuiteError(f"--pairs names the face pairs to score: give it or "
                                   f"{'--split' if split != 'val' else '--tta'}, not both")
        result = evaluate_pairs(run, pairs, data, json_path, detect, plots)
    elif detect is not None:
        raise VisionsuiteError("--detect/--no-detect: for --pairs; a split is read as the "
                               "model was trained")
    else:
        result = run_evaluation(run, data, json_path, split=split, plots=plots, tta=tta)
    headline = {k: v for k, v in result.items() if isinstance(v, (int, float)) and k != "seconds"}
    click.echo(table([{"model": result["model"], "format": result["format"],
                       "split": result["split"], **headline}]))
    click.echo(detail_text(get_task(result["task"]).detail_tables(result)), nl=False)
    if result.get("plots"):
        click.echo("plots: " + ", ".join(result["plots"]))


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--json", "json_path", type=click.Path(), help="Also write the table here.")
@friendly_errors(tensorflow=False)
def compare(runs, json_path):
    """The val metrics of RUNS (run folders of one task) side by side, with their mean and
    standard deviation: the folds of a cross-validation, seeds, recipes."""
    from visionsuite.core.compare import compare_runs
    from visionsuite.core.files import writable_file, write_json

    if json_path:
        writable_file(json_path, "the comparison", "--json")
    result = compare_runs(list(runs))
    _echo_comparison(result)
    if json_path:
        write_json(json_path, result)


def _echo_comparison(result: dict) -> None:
    from visionsuite.core.report import table

    summary = [{"run": name, "val": "-", **result[key]} for name, key in
               (("mean", "mean"), ("std", "std")) if result[key]]
    click.echo(table(result["runs"] + summary))
    for note in (result["folds_note"], result["val_note"]):
        if note:
            click.echo(f"warning: {note}", err=True)


@cli.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--data", help="Validate on this dataset's val split: one none of the members "
                             "trained on [the members' own val split, if they share it].")
@click.option("--output", default="runs", show_default=True, help="Folder of run folders.")
@click.option("--name", help="Run name [ensemble, ensemble2, ...].")
@friendly_errors
def ensemble(runs, data, output, name):
    """One model of RUNS (run folders of one task: a cross-validation's folds, seeds), averaging
    their probabilities (face: their embeddings' cosines), saved as a run folder that evaluate,
    export and prediction take; prints its val metrics under each member's on the same images,
    and the run folder as the last line."""
    from visionsuite.config import read_yaml
    from visionsuite.core.ensemble import ensemble_runs
    from visionsuite.core.report import detail_text, table
    from visionsuite.tasks import get_task

    run_dir = ensemble_runs(list(runs), data, output, name)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    task = get_task(read_yaml(run_dir / "config.yaml")["task"])
    click.echo(table(metrics["members"] + [{"run": f"ensemble of {len(runs)}",
                                            **task.headline(metrics)}]))
    click.echo(detail_text(task.detail_tables(metrics)), nl=False)
    click.echo(str(run_dir))


@cli.command("classify")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@friendly_errors
def classify_command(run, images, top_k, as_json):
    """Predict the classes of IMAGES (files or folders) with RUN."""
    from visionsuite.tasks.classify import classify_images
    from visionsuite.core.report import table

    results = classify_images(run, images, top_k)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    rows = [{"image": r["image"], "top-1": r["predictions"][0]["label"],
             "score": r["predictions"][0]["score"],
             "next": ", ".join(f"{p['label']} {p['score']:.3f}" for p in r["predictions"][1:])}
            for r in results]
    click.echo(table(rows))


@cli.command("segment")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--output", type=click.Path(), help="Folder for the masks [runs/segment/predictN].")
@click.option("--overlay", is_flag=True, help="Also write a colour overlay per image.")
@click.option("--threshold", type=float,
              help="Foreground probability threshold of 2-class models [0.5].")
@click.option("--window", nargs=2, type=float, metavar="CENTER WIDTH",
              help="Intensity window of DICOM, NIfTI and 16-bit images [as trained: "
                   "data.window, else the file's].")
@click.option("--all-components", is_flag=True,
              help="Keep every connected component: skip the largest-component "
                   "post-processing that training chose on val, if any.")
@click.option("--probabilities", is_flag=True,
              help="Also write each class's probability map but class 0's: 16-bit PNG "
                   "(value / 65535), float32 NIfTI for volumes.")
@click.option("--dicom-seg", is_flag=True,
              help="Also write a DICOM Segmentation (SEG) of each DICOM series or file, "
                   "referencing its images, for PACS and DICOM viewers.")
@click.option("--objects", is_flag=True,
              help="Write masks that number the foreground's connected components 1..N "
                   "(16-bit), as instance masks number cells, and count them (2-class "
                   "models; 2-D images, TIFF stacks and arrays, each slice on its own).")
@click.option("--split-touching", type=float, metavar="PX",
              help="With --objects: split touching objects where the distance map has a "
                   "peak in each rising PX pixels (0: not split) [as training chose on val, "
                   "else not split].")
@tta_option
@click.option("--json", "as_json", is_flag=True, help="Print per-image class areas as JSON.")
@friendly_errors
def segment_command(run, images, output, overlay, threshold, window, all_components,
                    probabilities, dicom_seg, objects, split_touching, tta, as_json):
    """Segment IMAGES (files or folders, any size; DICOM and NIfTI too) with RUN; one mask PNG
    per image at the image's size (0/255 for 2 classes, else class indices); a NIfTI volume
    or a DICOM series gets a NIfTI label volume in its geometry, a TIFF stack a TIFF stack of
    masks."""
    from visionsuite.core.report import table
    from visionsuite.tasks.segment.commands import segment_images

    results = segment_images(run, images, output, overlay, threshold,
                             window=list(window) if window else None,
                             all_components=all_components, probabilities=probabilities,
                             dicom_seg=dicom_seg, tta=tta, objects=objects,
                             split_touching=split_touching)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    rows = [{"image": r["image"], "mask": r.get("mask") or f"{len(r['masks'])} frames",
             **{f"{name} %": f"{100 * area['fraction']:.2f}"
                for name, area in r["areas"].items()},
             **({"objects": r["objects"]} if "objects" in r else {})} for r in results]
    click.echo(table(rows))
    click.echo(str(Path(results[0].get("mask") or results[0]["masks"][0]).parent))


@cli.command("detect")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@click.option("--conf", type=click.FloatRange(0, 1), default=0.25, show_default=True,
              help="Minimum score of a box.")
@click.option("--iou", type=click.FloatRange(0, 1),
              help="NMS overlap above which the weaker box goes [the run's model.nms_iou; "
                   "a .tflite keeps its own].")
@click.option("--max-detections", type=click.IntRange(1), help="Boxes per image [100].")
@click.option("--output", type=click.Path(), help="Folder for the drawn images "
                                                   "[runs/detect/predictN].")
@click.option("--json", "as_json", is_flag=True, help="Print the boxes as JSON.")
@friendly_errors
def detect_command(run, images, conf, iou, max_detections, output, as_json):
    """Detect objects in IMAGES (files or folders) with RUN (a run folder, .keras or .tflite):
    boxes in pixels of each original image, classes and scores, and a copy of each image
    with its boxes drawn."""
    from visionsuite.core.report import table
    from visionsuite.tasks.detect.predict import detect_images

    results = detect_images(run, images, conf, iou, max_detections, output)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    rows = [{"image": r["image"], "class": d["class"], "score": d["score"],
             "box (x1 y1 x2 y2)": " ".join(f"{v:.0f}" for v in d["box"])}
            for r in results for d in r["detections"]]
    click.echo(table(rows) if rows else "no detections")
    if results:
        click.echo(str(Path(results[0]["drawn"]).parent))


def face_detect_option(command):
    return click.option(
        "--detect/--no-detect", default=None,
        help="Find and crop faces, or take the images as face crops [as the model was "
             "trained: data.face_detect].")(command)


def operating_point_options(command):
    command = click.option(
        "--far", type=click.FloatRange(0, 1, min_open=True),
        help="Judge at the threshold training measured at this false accept rate on its "
             "held-out people (0.01, 0.001), instead of the model's.")(command)
    return click.option("--threshold", type=float,
                        help="Cosine similarity to accept [the model's].")(command)


def _refuse_every_face_without_detection(every_face: bool, detect: bool | None) -> None:
    if every_face and detect is False:
        raise VisionsuiteError("--every-face finds the faces in each image; it cannot take "
                               "--no-detect")


@cli.command("embed")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@face_detect_option
@click.option("--every-face", is_flag=True,
              help="Embed every face found in each image (group photos), with its box.")
@click.option("--json", "as_json", is_flag=True, help="Print the embeddings as JSON.")
@friendly_errors
def embed_command(run, images, detect, every_face, as_json):
    """Face embeddings (unit vectors) of IMAGES (files or folders) with RUN (a face run folder,
    .keras or .tflite)."""
    from visionsuite.core.report import table
    from visionsuite.tasks.face.commands import embed_every_face, embed_images

    _refuse_every_face_without_detection(every_face, detect)
    results = embed_every_face(run, images) if every_face else embed_images(run, images, detect)
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    rows = []
    for result in results:  # --every-face: a row per face, with its box
        for face in result.get("faces", [result]):
            box = {"face (x1 y1 x2 y2)": " ".join(map(str, face["box"])) if "box" in face
                   else "-"} if every_face else {}
            rows.append({"image": result["image"], **box,
                         "dims": len(face.get("embedding", [])),
                         "first values": " ".join(f"{v:+.3f}" for v in face["embedding"][:4])
                         if "embedding" in face else face["error"]})
    click.echo(table(rows))


@cli.command("verify")
@click.argument("run", type=click.Path())
@click.argument("image_a", type=click.Path())
@click.argument("image_b", type=click.Path())
@face_detect_option
@operating_point_options
@click.option("--every-face", is_flag=True,
              help="Photos of several people: every face of IMAGE_A against every face of "
                   "IMAGE_B (is anyone of one in the other?); the most similar two decide, "
                   "and their boxes are printed.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@friendly_errors
def verify_command(run, image_a, image_b, detect, threshold, far, every_face, as_json):
    """Are IMAGE_A and IMAGE_B the same person? Prints the cosine similarity and the threshold
    used; the exit code is 0 either way."""
    from visionsuite.tasks.face.commands import verify, verify_every_face

    _refuse_every_face_without_detection(every_face, detect)
    result = verify_every_face(run, image_a, image_b, threshold, far) if every_face else \
        verify(run, image_a, image_b, detect, threshold, far)
    if as_json:
        click.echo(json.dumps(result, indent=2))
        return
    verdict = "same person" if result["same_person"] else "different people"
    faces = (f"; faces {' '.join(map(str, result['face_a']))} of {len(result['faces_a'])} "
             f"and {' '.join(map(str, result['face_b']))} of {len(result['faces_b'])} "
             "(x1 y1 x2 y2)") if every_face else ""
    click.echo(f"{verdict}: similarity {result['similarity']:.4f} "
               f"(threshold {result['threshold']:.4f}){faces}")


@cli.command("enroll")
@click.argument("run", type=click.Path())
@click.argument("people", nargs=-1, required=True, type=click.Path())
@click.option("--gallery", required=True, type=click.Path(), help="Gallery file (JSON) to "
              "create or update.")
@face_detect_option
@friendly_errors
def enroll_command(run, people, gallery, detect):
    """Add PEOPLE (one folder of images per person, named after the folder) to a gallery;
    enrolling someone again replaces their entry."""
    from visionsuite.core.report import table
    from visionsuite.tasks.face.commands import enroll

    changes = enroll(run, gallery, people, detect)
    click.echo(table([{"person": c["person"], "action": c["action"], "images": c["images"],
                       "skipped": len(c["skipped"])} for c in changes]))
    for change in changes:
        for message in change["skipped"]:
            click.echo(f"warning: {message}; skipped", err=True)
    click.echo(str(gallery))


@cli.command("gallery")
@click.argument("gallery", type=click.Path())
@click.option("--remove", multiple=True, metavar="PERSON", help="Remove PERSON's embeddings "
              "from the gallery (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print the people as JSON.")
@friendly_errors
def gallery_command(gallery, remove, as_json):
    """The people enrolled in GALLERY (made by `visionsuite enroll`), or, with --remove, remove
    some."""
    from visionsuite.core.report import table
    from visionsuite.tasks.face.commands import gallery_people, remove_people

    removed = remove_people(gallery, remove) if remove else []
    people = gallery_people(gallery)
    if as_json:
        click.echo(json.dumps({"removed": removed, "people": people} if remove else people,
                              indent=2))
        return
    for row in removed:
        click.echo(f"removed {row['person']} ({row['images']} images)")
    if not remove:
        click.echo(table(people) if people else "nobody enrolled")
    click.echo(f"{gallery}: {len(people)} people, {sum(p['images'] for p in people)} images")


@cli.command("identify")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--gallery", required=True, type=click.Path(exists=False), help="Gallery file "
              "made by `visionsuite enroll`.")
@click.option("--top-k", default=5, show_default=True, type=click.IntRange(1))
@face_detect_option
@operating_point_options
@click.option("--every-face", is_flag=True, help="Identify every face found in each image "
              "(group photos), each drawn with its name into --output.")
@click.option("--output", type=click.Path(), help="Folder for the drawn images of "
              "--every-face [runs/identify/identifyN].")
@click.option("--json", "as_json", is_flag=True, help="Print the result(s) as JSON.")
@friendly_errors
def identify_command(run, images, gallery, top_k, detect, threshold, far, every_face, output,
                     as_json):
    """Who is in each of IMAGES (files or folders)? For one image, the gallery's people ranked
    by similarity; for several, one line each with the best match. `unknown` when even the
    best is below the model's threshold. Each image's largest face, unless --every-face."""
    from visionsuite.core.report import table
    from visionsuite.tasks.face.commands import identify, identify_images, no_face_message

    if every_face or output:
        _identify_every_face(run, images, gallery, top_k, detect, every_face, output, as_json,
                             threshold, far)
        return
    if len(images) == 1 and not Path(images[0]).is_dir():
        result = identify(run, images[0], gallery, top_k, detect, threshold, far)
        if as_json:
            click.echo(json.dumps(result, indent=2))
            return
        click.echo(table(result["candidates"]))
        click.echo(f"identity: {result['identity']}")
        return
    results = identify_images(run, images, gallery, top_k, detect, threshold, far)
    if all("error" in result for result in results):
        raise VisionsuiteError(no_face_message([result["error"] for result in results]))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    click.echo(table([identification_row(result) for result in results]))
    for result in results:
        if "error" in result:
            click.echo(f"warning: {result['error']}", err=True)


def _identify_every_face(run, images, gallery, top_k, detect, every_face, output, as_json,
                         threshold, far):
    from visionsuite.core.report import table
    from visionsuite.tasks.face.commands import identify_every_face, no_face_message

    if not every_face:
        raise VisionsuiteError("--output is where --every-face draws its images; add "
                               "--every-face")
    _refuse_every_face_without_detection(every_face, detect)
    results, folder = identify_every_face(run, images, gallery, top_k, output, threshold, far)
    if all("error" in result for result in results):
        raise VisionsuiteError(no_face_message([result["error"] for result in results]))
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    rows = [{"image": result["image"], "face (x1 y1 x2 y2)": " ".join(map(str, face["box"])),
             "identity": face["identity"], "best": face["candidates"][0]["person"],
             "similarity": face["candidates"][0]["similarity"]}
            for result in results for face in result.get("faces", [])]
    click.echo(table(rows))
    for result in results:
        if "error" in result:
            click.echo(f"warning: {result['error']}", err=True)
    click.echo(str(folder))


def identification_row(result: dict) -> dict:
    if "error" in result:
        return {"image": result["image"], "identity": "-", "best": "-", "similarity": None}
    best = result["candidates"][0]
    return {"image": result["image"], "identity": result["identity"], "best": best["person"],
            "similarity": best["similarity"]}


@cli.command()
@click.argument("run", type=click.Path())
@click.option("--quantize", default="int8", show_default=True,
              help="none, float16, dynamic or int8; a comma-separated list of them, or all: "
                   "one file each, compared in one table.")
@click.option("--output", type=click.Path(),
              help="Folder for the files [RUN/exported; ./exported for a .keras outside a run].")
@click.option("--calibration", type=click.IntRange(1), help="int8 calibration images [200].")
@click.option("--data", help="Dataset for calibration and the parity check [the run's].")
@friendly_errors
def export(run, quantize, output, calibration, data):
    """Export RUN to TFLite with metadata, and compare it with the Keras model on val: the
    same metrics, agreement, size and latency at 1 thread. Prints the files last."""
    from visionsuite.core.export import ExportFailed, export_all, parse_quantizations

    try:
        reports = export_all(run, parse_quantizations(quantize), output, calibration, data)
    except ExportFailed as failed:
        if failed.reports:  # the files that were written; the error line names the others
            print_export_reports(failed.reports)
        raise
    print_export_reports(reports)


def print_export_reports(reports: list[dict]) -> None:
    from visionsuite.core.benchmark import int8_dot_products
    from visionsuite.core.report import table

    click.echo(table(export_rows(reports)))
    legend = "ms_1t: median latency of the file at 1 thread (LiteRT)"
    if reports[0].get("agreement") is not None:
        legend += f"; agreement: with Keras ({reports[0]['agreement_meaning']})"
    click.echo(legend)
    note = int8_speed_note(reports, int8_dot_products())
    if note:
        click.echo(note)
    for report in reports:
        click.echo(report["file"])


def int8_speed_note(reports: list[dict], dot_products: list[str] | None) -> str | None:
    """Why int8 can be the slower file here: users expect it to be faster, and on CPUs without
    int8 dot products it is not (README, Classification). `dot_products`: the CPU's
    (core.benchmark.int8_dot_products), None where unknown."""
    latency = {report["quantize"]: report["latency_ms_1_thread"] for report in reports}
    if "int8" not in latency or "none" not in latency or latency["int8"] < latency["none"]:
        return None
    if dot_products:
        why = (f", though this CPU has {' and '.join(dot_products)}: some of the model's ops "
               "may have no int8 kernel in LiteRT")
    elif dot_products == []:
        why = (": this CPU has no int8 dot products (AVX512-VNNI, ARM's on phones), without "
               "which LiteRT's int8 kernels gain little")
    else:  # the CPU's instructions are unknown
        why = ""
    return (f"note: int8 ran no faster than float32 here{why}; time the files where they will "
            "run (visionsuite benchmark FILE...)")


def export_rows(reports: list[dict]) -> list[dict]:
    """The Keras model's row, then one row per exported file."""
    rows = [{"model": "keras", "size_mb": None, "ms_1t": None, **reports[0]["keras"]}]
    for report in reports:
        rows.append({"model": f"tflite {report['quantize']}",
                     "size_mb": f"{report['size_bytes'] / 2**20:.2f}",
                     "ms_1t": f"{report['latency_ms_1_thread']:.3f}", **report["tflite"],
                     "agreement": report["agreement"]})
    return rows


@cli.command()
@click.argument("models", nargs=-1, required=True, type=click.Path())
@click.option("--threads", default="1,2", show_default=True, help="Comma-separated counts.")
@click.option("--runs", default=100, show_default=True, type=click.IntRange(1))
@click.option("--json", "json_path", type=click.Path(), help="Also write the results here.")
@friendly_errors
def benchmark(models, threads, runs, json_path):
    """Latency (p50/p90 ms), images/s and size of each MODEL (.tflite, .keras, run folder)."""
    from visionsuite.core.benchmark import benchmark_models, int8_dot_products
    from visionsuite.core.files import writable_file, write_json
    from visionsuite.core.report import table

    try:
        counts = [int(t) for t in threads.split(",") if t.strip()]
    except ValueError:
        raise VisionsuiteError(f"--threads {threads}: expected numbers like 1,2") from None
    if not counts or min(counts) < 1:
        # LiteRT refuses 0; TensorFlow would take it as every core.
        raise VisionsuiteError(f"--threads {threads}: thread counts of 1 or more, like 1,2")
    if json_path:
        writable_file(json_path, "the results file", "--json")
    rows = benchmark_models(models, counts, runs)
    click.echo(table(rows))
    dot_products = int8_dot_products()
    if dot_products is not None and any(row["format"] == "tflite" for row in rows):
        click.echo(f"int8 dot products of this CPU: {' and '.join(dot_products) or 'none'} "
                   "(without them int8 .tflite files run little faster, or slower, than "
                   "float32 ones)")
    if json_path:
        write_json(json_path, rows)


@cli.group()
def data():
    """Dataset tools."""


@data.command("check")
@click.argument("task", type=click.Choice(TASK_NAMES))
@click.argument("path", type=click.Path())
@click.option("--split", type=click.Choice(HELD_OUT_SPLITS), default="val", show_default=True,
              help="Check train and val, as train reads them, or the test split alone, as "
                   "`evaluate --split test` reads it.")
@friendly_errors(tensorflow=False)
def data_check(task, path, split):
    """Count images per split and class, and report unreadable or odd files (read-only).
    Exit code 1 when the dataset cannot be used."""
    from visionsuite.datasets import resolve_dataset
    from visionsuite.tasks import get_task

    root = resolve_dataset(path, task)
    report = get_task(task).check_data(str(root), split)  # as train or evaluate reads it
    click.echo(report.text)
    test_split = get_task(task).unread_test_split(root) if split == "val" else None
    if test_split:
        click.echo(f"test split: {test_split}, not read by train or by this check; "
                   f"`visionsuite data check {task} {path} --split test` checks it, "
                   "`visionsuite evaluate RUN --split test` scores it")
    if not report.usable:
        click.echo(f"error: {report.problem}", err=True)
        sys.exit(1)


@cli.command()
@friendly_errors
def models():
    """List the backbones of the zoo (each serves every task as model.backbone), then each
    task's default and its own networks."""
    from visionsuite.config import load_config
    from visionsuite.core.backbones import BACKBONES
    from visionsuite.core.report import table
    from visionsuite.tasks import TASK_NAMES, get_task

    click.echo("\n".join(sorted(BACKBONES)))
    rows = []
    for name in TASK_NAMES:
        own = [value for value in get_task(name).own_backbones if value]
        rows.append({"task": name, "default": load_config(name).model.backbone,
                     "its own": ", ".join(own) or "-"})
    click.echo("\nEach backbone above serves every task (`--set model.backbone=NAME`): "
               "classify's network, segment's U-Net encoder, detect's backbone, face's "
               "embedder.")
    click.echo(table(rows))


def main():
    cli(prog_name="visionsuite")


if __name__ == "__main__":
    main()
