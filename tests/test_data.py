import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import make_shapes_folder
from visionsuite.core.data import decode_images
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.classify import index_image_folders


def test_train_val_layout_is_indexed_with_sorted_classes(shapes_dir: Path):
    index = index_image_folders(shapes_dir)
    assert index.classes == ["circle", "square", "triangle"]
    assert len(index.splits["train"]) == 36 and len(index.splits["val"]) == 12
    assert not index.split_by_fraction


def test_single_folder_is_split_per_class_and_reproducibly(tmp_path: Path):
    root = make_shapes_folder(tmp_path / "d", per_class=10, val_per_class=0) / "train"
    first = index_image_folders(root, val_fraction=0.2, seed=3)
    second = index_image_folders(root, val_fraction=0.2, seed=3)
    assert first.splits == second.splits
    assert first.split_by_fraction
    val_labels = [label for _, label in first.splits["val"]]
    assert sorted(val_labels) == [0, 0, 1, 1, 2, 2]
    assert not {p for p, _ in first.splits["val"]} & {p for p, _ in first.splits["train"]}


def test_k_folds_are_stratified_and_hold_each_image_out_once(tmp_path: Path):
    """data.folds / data.fold: each fold takes its share of every class; the folds of one
    seed are disjoint and hold every image once; the data line names the fold."""
    from visionsuite.config import load_config
    from visionsuite.core.splits import Fold
    from visionsuite.tasks import get_task

    root = make_shapes_folder(tmp_path / "d", per_class=10, val_per_class=0) / "train"
    vals = [index_image_folders(root, Fold(k, 3), seed=3).splits["val"] for k in range(3)]
    for val in vals:  # 10 per class: 4, 3, 3 of each
        counts = np.bincount([label for _, label in val], minlength=3)
        assert counts.min() == counts.max() and counts[0] in (3, 4)
    held = [path for val in vals for path, _ in val]
    assert len(held) == len(set(held)) == 30
    config = load_config("classify", overrides={"data.path": str(root), "data.image_size": 32},
                         sets=("data.folds=3", "data.fold=2"))
    data = get_task("classify").load_data(config)
    assert (len(data.train), len(data.val)) == (21, 9)  # images 2, 5 and 8 of each class
    assert data.source.endswith("val: fold 2 of 3 (seed 0)")
    # train/ and val/: a val split of its own
    config.data.path = str(make_shapes_folder(tmp_path / "e", per_class=4, val_per_class=2))
    with pytest.raises(VisionsuiteError, match="has a val split of its own"):
        get_task("classify").load_data(config)


def test_split_folders_are_known_by_the_names_datasets_come_with(tmp_path: Path):
    """Kaggle's Training/ and Testing/ (any case), and test/ as val where there is no val/;
    before, Training/ and Testing/ were taken for two classes."""
    from visionsuite.tasks.classify import check_image_folders

    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "train").rename(root / "Training")
    (root / "val").rename(root / "Testing")
    index = index_image_folders(root)
    assert index.classes == ["circle", "square", "triangle"] and not index.split_by_fraction
    assert (len(index.splits["train"]), len(index.splits["val"])) == (6, 3)
    assert check_image_folders(str(root)).text.splitlines()[1:3] == [
        "  train: Training/", "  val: Testing/"]
    (root / "Testing").rename(root / "test")
    (root / "val").mkdir()  # val/ comes before test/, whatever test/ holds
    for shape in ("circle", "square", "triangle"):
        (root / "val" / shape).mkdir()
        (root / "test" / shape / f"{shape}_0.png").rename(root / "val" / shape / "v.png")
    assert {path.name for path, _ in index_image_folders(root).splits["val"]} == {"v.png"}


def test_a_test_set_that_ships_its_test_folder_alone_is_evaluated_whole(tmp_path: Path):
    from visionsuite.tasks.classify import check_image_folders

    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    shutil.rmtree(root / "train")
    (root / "val").rename(root / "test")
    index = index_image_folders(root, val_fraction=1.0)  # EVERY_IMAGE: `evaluate --data`
    assert index.classes == ["circle", "square", "triangle"]
    assert (len(index.splits["train"]), len(index.splits["val"])) == (0, 3)
    index = index_image_folders(root, val_fraction=1.0, classes=["square", "circle"])
    assert index.classes == ["square", "circle"] and index.left_out == ["triangle"]
    report = check_image_folders(str(root))  # was: 'test' taken for the only class
    assert report.usable and "  no train/ folder: a test set" in report.text, report.text


def test_a_set_inside_an_archives_wrapper_folder_is_found_in_it(tmp_path: Path):
    """Kaggle's archive.zip unpacks to archive/<set>/train/...: --data may name archive/. A
    table beside the one folder makes it a dataset's own folder (an error, as before)."""
    make_shapes_folder(tmp_path / "archive" / "Pets" / "shapes", per_class=2, val_per_class=1)
    (tmp_path / "archive" / "LICENSE.txt").write_text("CC0")
    index = index_image_folders(tmp_path / "archive")
    assert index.root == tmp_path / "archive" / "Pets" / "shapes"
    assert (len(index.splits["train"]), len(index.splits["val"])) == (6, 3)
    (tmp_path / "archive" / "notes.json").write_text("{}")
    with pytest.raises(VisionsuiteError, match="expected one sub-folder per class"):
        index_image_folders(tmp_path / "archive")


def test_missing_folder_and_empty_class_are_one_line_errors(tmp_path: Path):
    with pytest.raises(VisionsuiteError, match="dataset folder not found"):
        index_image_folders(tmp_path / "nope")
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "train" / "empty").mkdir()
    with pytest.raises(VisionsuiteError) as error:
        index_image_folders(root)
    assert str(root / "train" / "empty") in str(error.value)
    assert "holds no images" in str(error.value)
    (root / "train" / "empty" / "scan.jxl").write_bytes(b"\xff\x0a JPEG XL, not read here")
    with pytest.raises(VisionsuiteError, match=r"no images \(1 file in no image format, "
                                               r"e.g. scan.jxl\)$"):
        index_image_folders(root)


def test_val_class_unknown_to_train_is_an_error(tmp_path: Path):
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "val" / "hexagon").mkdir()
    Image.new("RGB", (8, 8)).save(root / "val" / "hexagon" / "h.png")
    with pytest.raises(VisionsuiteError, match="not in the train split"):
        index_image_folders(root)


def test_folders_a_mac_zip_or_jupyter_leaves_beside_the_classes_are_not_classes(tmp_path: Path):
    """Before, __MACOSX (AppleDouble `._*` files) beside the class folders stopped a dataset
    unzipped on a Mac with 'class folder holds no images'."""
    root = make_shapes_folder(tmp_path / "d", per_class=5, val_per_class=0) / "train"
    for junk in ("__MACOSX/circle", ".ipynb_checkpoints"):
        (root / junk).mkdir(parents=True)
    (root / "__MACOSX/circle/._0.png").write_bytes(b"\x00\x05\x16\x07")
    index = index_image_folders(root)
    assert index.classes == ["circle", "square", "triangle"]
    assert len(index.splits["train"]) + len(index.splits["val"]) == 15
    # Inside a class folder, Jupyter's checkpoint copies are no more images of the class.
    (root / "circle" / ".ipynb_checkpoints").mkdir()
    shutil.copy(next((root / "circle").glob("*.png")),
                root / "circle" / ".ipynb_checkpoints" / "0-checkpoint.png")
    index = index_image_folders(root)
    assert len(index.splits["train"]) + len(index.splits["val"]) == 15


def test_data_classes_chooses_the_class_folders_and_their_order(tmp_path: Path):
    """Before, classify ignored data.classes and trained on every folder."""
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    index = index_image_folders(root, classes=["triangle", "circle"])
    assert index.classes == ["triangle", "circle"] and index.left_out == ["square"]
    assert sorted(label for _, label in index.splits["val"]) == [0, 1]
    assert {path.parent.name for path, label in index.splits["train"] if label == 0} == \
        {"triangle"}
    with pytest.raises(VisionsuiteError, match="no folder for class.es. hexagon named in "
                                               "data.classes .folders: circle, square, "):
        index_image_folders(root, classes=["circle", "hexagon"])
    with pytest.raises(VisionsuiteError, match="at least 2 different"):
        index_image_folders(root, classes=["circle", "circle"])
    flat = make_shapes_folder(tmp_path / "flat", per_class=5, val_per_class=0) / "train"
    index = index_image_folders(flat, classes=["square", "circle"])
    assert index.classes == ["square", "circle"] and index.left_out == ["triangle"]
    assert len(index.splits["train"]) + len(index.splits["val"]) == 10


def test_a_link_out_of_the_dataset_is_refused(tmp_path: Path):
    outside = tmp_path / "secret.png"
    Image.new("RGB", (8, 8)).save(outside)
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "train" / "circle" / "link.png").symlink_to(outside)
    with pytest.raises(VisionsuiteError, match="leaves the dataset folder"):
        index_image_folders(root)


def test_unreadable_images_are_skipped_counted_and_warned(tmp_path: Path, capsys):
    from visionsuite.core.data import TF_ALIGNMENT

    good, other = tmp_path / "good.png", tmp_path / "other.png"
    Image.new("RGB", (8, 8), (10, 20, 30)).save(good)
    Image.new("RGB", (8, 8), (40, 50, 60)).save(other)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    decoded = decode_images([good, bad, other], size=4, channels=3, workers=2)
    assert decoded.images.shape == (2, 4, 4, 3)
    assert decoded.kept.tolist() == [0, 2]
    assert decoded.images[:, 0, 0].tolist() == [[10, 20, 30], [40, 50, 60]]  # moved up in order
    assert decoded.images.ctypes.data % TF_ALIGNMENT == 0  # a tensor can share it (below)
    assert len(decoded.skipped) == 1 and str(bad) in decoded.skipped[0]
    assert f"warning: {bad}" in capsys.readouterr().err


def test_pipeline_batches_augments_and_one_hots():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment
    from visionsuite.core.data import make_dataset

    images = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), np.uint8)
    targets = np.arange(10, dtype=np.int32) % 3
    augment = make_augment(AugmentConfig(erase=1.0))
    dataset = make_dataset(images, targets, 4, training=True, augment_fn=augment,
                           target_fn=lambda y: tf.one_hot(y, 3))
    batches = list(dataset)
    assert len(batches) == 2  # train batches drop the remainder
    x, y = batches[0]
    assert x.shape == (4, 16, 16, 3) and x.dtype == tf.float32 and y.shape == (4, 3)
    assert float(tf.reduce_min(x)) >= 0 and float(tf.reduce_max(x)) <= 255
    val = list(make_dataset(images, targets, 4, training=False))
    assert sum(len(b[0]) for b in val) == 10
    assert np.array_equal(val[0][0].numpy(), images[:4].astype(np.float32))


def test_a_dataset_gathers_from_its_arrays_memory_and_tensorflow_gets_aligned_memory():
    """make_dataset's tensors share the arrays' memory (no copy of the dataset), which stays
    read-only from then on, and tf.data's rewrites that would copy it are off. Memory that
    TensorFlow's kernels abort on (not aligned) or cannot share (strided) is copied once."""
    import tensorflow as tf

    from visionsuite.core.data import TF_ALIGNMENT, aligned_empty, make_dataset, shared_tensor

    images = aligned_empty((6, 8, 8, 3), np.uint8)
    images[...] = np.arange(6, dtype=np.uint8)[:, None, None, None]
    targets = aligned_empty((6,), np.int32)
    targets[...] = np.arange(6)
    dataset = make_dataset(images, targets, 3, training=False)
    assert not images.flags.writeable and not targets.flags.writeable
    assert not dataset.options().experimental_optimization.apply_default_optimizations
    images.flags.writeable = True  # only to show that the dataset reads this very memory
    images[1] = 200
    x, y = next(iter(dataset))
    assert x.numpy()[:, 0, 0, 0].tolist() == [0, 200, 2] and y.numpy().tolist() == [0, 1, 2]

    buffer = np.zeros(6 * 8 * 8 * 3 + 1, np.uint8)
    unaligned = buffer[1:].reshape(6, 8, 8, 3)
    unaligned[...] = 7
    assert unaligned.ctypes.data % TF_ALIGNMENT  # shared as it is, a gather would abort
    for array in (unaligned, np.full((6, 8, 16, 3), 7, np.uint8)[:, :, ::2]):
        tensor = shared_tensor(array)
        array[...] = 9  # still writeable: the tensor holds its own copy
        assert tf.reduce_max(tf.gather(tensor, [5])) == 7 and tensor.shape == (6, 8, 8, 3)


def test_identity_batches_hold_k_images_of_each_of_p_people():
    from visionsuite.core.data import make_dataset
    from visionsuite.tasks.face.data import identity_batches

    # 5 people with 6 images each, one with 3 and one with a single photo
    targets = np.array([p for p in range(5) for _ in range(6)] + [5] * 3 + [6], np.int32)
    epochs = identity_batches(targets, per_identity=3, batch_size=9, seed=1)
    first, second = list(epochs()), list(epochs())
    assert len(first) == 4  # 12 groups of 3 make 4 batches of 3 people
    for batch in first:
        _, counts = np.unique(targets[batch], return_counts=True)
        assert len(batch) == 9 and all(c % 3 == 0 for c in counts), counts  # whole groups
    assert set(np.concatenate(first)) == set(range(len(targets)))  # every photo each epoch
    assert any(not np.array_equal(a, b) for a, b in zip(first, second))  # reshuffled
    again = identity_batches(targets, per_identity=3, batch_size=9, seed=1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again()))  # reproducible
    images = np.arange(len(targets), dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 4, 4, 1), np.uint8)
    dataset = make_dataset(images, targets, 9, training=True,
                           index_batches=identity_batches(targets, 3, 9, seed=1))
    x, y = next(iter(dataset))
    assert np.array_equal(x.numpy()[:, 0, 0, 0].astype(int), first[0])
    assert np.array_equal(y.numpy(), targets[first[0]])
    with pytest.raises(VisionsuiteError, match="images per identity"):
        identity_batches(targets, per_identity=1, batch_size=9)


def test_identity_augmentation_leaves_images_unchanged():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    identity = AugmentConfig(flip=0, rotate=0, translate=0, zoom=0, brightness=0, contrast=0)
    images = tf.random.uniform((2, 8, 8, 3), 0, 255)
    assert np.allclose(make_augment(identity)(images).numpy(), images.numpy(), atol=1e-3)
    flipped = make_augment(AugmentConfig(flip=1.0, rotate=0, translate=0, zoom=0, brightness=0,
                                         contrast=0))(images)
    assert np.allclose(flipped.numpy(), images.numpy()[:, :, ::-1], atol=1e-3)


def test_masks_follow_the_images_through_geometric_augmentation():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    masks = np.zeros((4, 32, 32), np.int32)
    masks[:, 8:20, 4:16], masks[:, 20:30, 18:30] = 1, 2
    images = tf.constant(np.repeat(masks[..., None] * 100.0, 3, axis=-1), tf.float32)
    augment = make_augment(AugmentConfig(flip=0.5, rotate=30, translate=0.1, zoom=0.2,
                                         brightness=0, contrast=0))
    # The batch's seed decides how much border there is to disagree on (0.975-0.983 for seeds
    # 0-7; a global seed left it to the tests run before).
    warped_images, warped_masks = augment(images, tf.constant(masks), seed=tf.constant([0, 1]))
    assert warped_masks.dtype == tf.int32 and set(np.unique(warped_masks)) <= {0, 1, 2}
    # Bilinear images and nearest masks disagree only along the class borders.
    agreement = np.mean(np.round(warped_images.numpy()[..., 0] / 100.0) == warped_masks.numpy())
    assert agreement > 0.97
    assert not np.array_equal(warped_masks.numpy(), masks)


def test_elastic_displacements_are_smooth_and_of_the_asked_size():
    import tensorflow as tf

    from visionsuite.core.augment import _Draws, _elastic_field

    dy, dx = _elastic_field(_Draws(tf.constant([3, 4])), 64, 96, 80, sigma=10.0, grid=3)
    assert dy.shape == (64, 96, 80)
    field = np.stack([dy.numpy(), dx.numpy()])
    assert 9.0 < field.std() < 11.0  # every pixel N(0, 10^2), over 64 draws
    # neighbouring pixels move alike: a deformation, not noise
    assert np.abs(np.diff(field, axis=2)).max() < 2.0
    assert np.abs(np.diff(field, axis=3)).max() < 2.0


def test_elastic_deformation_moves_masks_with_images_and_repeats_with_its_seed():
    import tensorflow as tf

    from visionsuite.config import AugmentConfig
    from visionsuite.core.augment import make_augment

    masks = np.zeros((2, 48, 48), np.int32)
    masks[:, 10:30, 8:24], masks[:, 30:44, 26:44] = 1, 2
    images = tf.constant(np.repeat(masks[..., None] * 100.0, 3, axis=-1), tf.float32)
    augment = make_augment(AugmentConfig(flip=0, rotate=0, translate=0, zoom=0, brightness=0,
                                         contrast=0, elastic=4.0), crop_size=32)
    seed = tf.constant([5, 6])
    warped_images, warped_masks = augment(images, tf.constant(masks), seed=seed)
    again_images, again_masks = augment(images, tf.constant(masks), seed=seed)
    assert np.array_equal(warped_masks.numpy(), again_masks.numpy())
    assert np.allclose(warped_images.numpy(), again_images.numpy())
    assert set(np.unique(warped_masks)) <= {0, 1, 2}
    agreement = np.mean(np.round(warped_images.numpy()[..., 0] / 100.0) == warped_masks.numpy())
    assert agreement > 0.95


def test_files_written_whole_get_the_permissions_of_any_new_file(tmp_path: Path):
    import os

    from visionsuite.core.files import UMASK, atomic_write_bytes, atomic_write_text

    new = tmp_path / "model.tflite"
    atomic_write_bytes(new, b"tflite")
    assert new.stat().st_mode & 0o777 == 0o666 & ~UMASK  # not mkstemp's private 0600
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert new.stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    kept = tmp_path / "gallery.json"
    kept.write_text("{}")
    os.chmod(kept, 0o640)
    atomic_write_text(kept, '{"people": {}}')  # replacing keeps the file's own permissions
    assert kept.stat().st_mode & 0o777 == 0o640 and kept.read_text() == '{"people": {}}'
    assert sorted(path.name for path in tmp_path.iterdir()) == ["gallery.json",
                                                                 "model.tflite", "plain.txt"]


def test_exclusive_lock_makes_a_second_writer_wait(tmp_path: Path):
    import threading
    import time

    from visionsuite.core.files import exclusive_lock

    target, order, holding = tmp_path / "gallery.json", [], threading.Event()

    def first():
        with exclusive_lock(target):
            order.append("first in")
            holding.set()
            time.sleep(0.3)
            order.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    holding.wait()
    with exclusive_lock(target):
        order.append("second in")
    thread.join()
    assert order == ["first in", "first out", "second in"]


def test_a_dataset_too_large_for_ram_is_refused_before_decoding(tmp_path: Path, monkeypatch):
    from visionsuite.config import load_config
    from visionsuite.core import data
    from visionsuite.tasks.classify import ClassifyTask

    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)  # 9 images
    config = load_config("classify", overrides={"data.path": str(root)},
                         sets=["data.image_size=64"])
    needed = data.CACHE_COPIES * 9 * 64 * 64 * 3
    read_image, decoded = data.read_image, []
    monkeypatch.setattr(data, "read_image", lambda *args: decoded.append(args) or read_image(*args))
    monkeypatch.setattr(data, "available_memory", lambda: needed - 1)
    with pytest.raises(VisionsuiteError, match=r"9 images at 64x64x3 need about 0.0 GiB of RAM"):
        ClassifyTask().load_data(config)
    assert not decoded  # refused before the first image was read
    monkeypatch.setattr(data, "available_memory", lambda: needed)
    assert len(ClassifyTask().load_data(config).train) == 6 and len(decoded) == 9


def test_balanced_class_weights_and_the_weighted_loss():
    import keras

    from visionsuite.config import load_config
    from visionsuite.tasks import get_task
    from visionsuite.tasks.classify import balanced_weights

    # 6 images: four of class 0, two of class 1, none of class 2.
    assert balanced_weights(np.array([0, 0, 0, 0, 1, 1]), 3) == [0.5, 1.0, 0.0]
    task = get_task("classify")
    config = load_config("classify", sets=["train.class_weights=[1, 3]",
                                           "train.label_smoothing=0"])
    loss, _ = task.loss_and_metrics(config, ["cat", "dog"])
    truth = keras.ops.convert_to_tensor(np.eye(2, dtype="float32")[[0, 1]])
    predicted = keras.ops.convert_to_tensor(np.array([[0.8, 0.2], [0.4, 0.6]], "float32"))
    expected = (-np.log(0.8) * 1 - np.log(0.6) * 3) / 2  # each image by its class's weight
    assert float(loss(truth, predicted)) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(VisionsuiteError, match=r"train.class_weights has 2 values for 3 "
                                               r"classes \(a, b, c\)"):
        task.loss_and_metrics(config, ["a", "b", "c"])
    for setting, message in (("train.class_weights=inverse", "must be 'balanced' or one weight"),
                             ("train.class_weights=[0, -1]", "must be at least 0"),
                             ("train.class_weights=[]", "must be at least 0")):
        with pytest.raises(VisionsuiteError, match=message):
            task.check_model(load_config("classify", sets=[setting]))
    with pytest.raises(VisionsuiteError, match="segment takes one weight per class"):
        get_task("segment").check_model(load_config("segment",
                                                    sets=["train.class_weights=balanced"]))
