"""Classification datasets labelled by CSV tables, as Kaggle and medical sets ship them."""

import shutil
from pathlib import Path

import pytest

from conftest import TINY_SETS, make_shapes_folder, snapshot
from test_cli import assert_one_line_error, invoke
from visionsuite.errors import VisionsuiteError
from visionsuite.tasks.classify import index_image_folders


def _shapes_table_set(root: Path, per_class: int = 4) -> dict[str, str]:
    """The shapes of make_shapes_folder moved into HAM10000's two part folders, flat; returns
    each image's stem -> class."""
    shapes = make_shapes_folder(root / "shapes", per_class=per_class, val_per_class=0)
    labels = {}
    for number, path in enumerate(sorted((shapes / "train").rglob("*.png"))):
        part = root / f"images_part_{number % 2 + 1}"
        part.mkdir(parents=True, exist_ok=True)
        stem = f"ISIC_{number:07d}"
        path.rename(part / f"{stem}.png")
        labels[stem] = path.parent.name
    shutil.rmtree(shapes)
    return labels


def test_a_metadata_table_naming_stems_in_part_folders_is_split_by_fraction(tmp_path):
    """HAM10000: metadata.csv (lesion_id, image_id without extension, dx), the images in two
    part folders."""
    labels = _shapes_table_set(tmp_path)
    rows = "".join(f"HAM_{i},{stem},{name},histo\n" for i, (stem, name) in
                   enumerate(labels.items()))
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx,dx_type\n" + rows)
    index = index_image_folders(tmp_path, val_fraction=0.25)
    assert index.classes == ["circle", "square", "triangle"] and index.split_by_fraction
    assert (len(index.splits["train"]), len(index.splits["val"])) == (9, 3)
    assert index.notes == ["labels: HAM10000_metadata.csv (images: column image_id; classes: "
                           "column dx)"]
    for path, label in index.splits["train"] + index.splits["val"]:
        assert index.classes[label] == labels[path.stem]
    index = index_image_folders(tmp_path, classes=["triangle", "circle"])  # data.classes
    assert index.classes == ["triangle", "circle"] and index.left_out == ["square"]
    assert len(index.splits["train"] + index.splits["val"]) == 8


def test_train_and_val_tables_of_numbered_grades_are_read_as_listed(tmp_path):
    """APTOS: train.csv and val.csv (id_code, diagnosis 0-11: numbers sorted as numbers), the
    images in train_images/ named by file name; test.csv is the test split."""
    labels = _shapes_table_set(tmp_path, per_class=8)
    grades = {"circle": "2", "square": "10", "triangle": "0"}
    stems = sorted(labels)
    for split, chosen in (("train", stems[:16]), ("val", stems[16:20]), ("test", stems[20:])):
        (tmp_path / f"{split}.csv").write_text("id_code,diagnosis\n" + "".join(
            f"{stem}.png,{grades[labels[stem]]}\n" for stem in chosen))
    index = index_image_folders(tmp_path)
    assert index.classes == ["0", "2", "10"] and not index.split_by_fraction
    assert [len(index.splits[name]) for name in ("train", "val")] == [16, 4]
    test = index_image_folders(tmp_path, held_out="test")
    assert [path.stem for path, _ in test.splits["val"]] == stems[20:]
    assert test.splits["train"] == []


def test_one_hot_columns_name_the_class_and_two_ones_are_an_error(tmp_path):
    """ISIC 2018's ground truth: image, then one column per class holding 1.0 or 0.0."""
    labels = _shapes_table_set(tmp_path)
    names = ["circle", "square", "triangle"]
    rows = "".join(f"{stem}," + ",".join("1.0" if name == labels[stem] else "0.0"
                                        for name in names) + "\n" for stem in labels)
    table = tmp_path / "GroundTruth.csv"
    table.write_text("image," + ",".join(names) + "\n" + rows)
    index = index_image_folders(tmp_path)
    assert index.classes == names
    assert index.notes[0].endswith("classes: one-hot columns circle, square, triangle)")
    table.write_text("image," + ",".join(names) + "\n" + rows.replace("0.0", "1.0", 1))
    with pytest.raises(VisionsuiteError, match=r"GroundTruth.csv:2: 2 of the one-hot columns "
                                               r"\(circle, square, triangle\) hold 1"):
        index_image_folders(tmp_path)


def test_label_table_errors_name_the_file_and_row(tmp_path):
    labels = _shapes_table_set(tmp_path)
    table = tmp_path / "labels.csv"
    stems = list(labels)
    for rows, error in (
            ([f"{stems[0]},circle", f"{stems[1]},circle", "", "ISIC_9999999,square"],
             r"labels.csv:5: image 'ISIC_9999999' is not there \(below "),  # blank lines count
            ([f"{stems[0]},circle", f"{stems[1]},"], r"labels.csv:3: image '\S+' has no class"),
            ([f"{stems[0]},circle", "../outside.png,square", f"{stems[1]},circle"],
             "leaves the dataset folder")):
        table.write_text("file,label\n" + "\n".join(rows) + "\n")
        with pytest.raises(VisionsuiteError, match=error):
            index_image_folders(tmp_path)
    table.write_text("file,size,source\n" + "".join(f"{stem},3,x\n" for stem in stems))
    with pytest.raises(VisionsuiteError, match=r"labels.csv: which column holds the class\? Its "
                                               r"columns: size, source; name it with --set "
                                               r"data.label_column=NAME"):
        index_image_folders(tmp_path)
    with pytest.raises(VisionsuiteError, match=r"labels.csv: one class \(x\); a classifier "
                                               "needs at least 2"):
        index_image_folders(tmp_path, columns=(None, "source"))
    with pytest.raises(VisionsuiteError, match="no column 'grade' .data.label_column.; its "
                                               "columns: file, size, source"):
        index_image_folders(tmp_path, columns=(None, "grade"))


def test_a_csv_naming_no_images_leaves_the_class_folders_as_they_are(tmp_path):
    """Sign Language MNIST ships pixel rows as CSV: not a label table."""
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "pixels.csv").write_text("label,pixel1,pixel2\n3,107,118\n6,155,157\n")
    index = index_image_folders(root)
    assert index.classes == ["circle", "square", "triangle"] and index.notes == []


def test_a_table_labelled_set_trains_and_data_check_says_how_it_read_it(tmp_path):
    data = tmp_path / "ham"
    labels = _shapes_table_set(data)
    (data / "metadata.csv").write_text("image_id,dx\n" + "".join(
        f"{stem},{name}\n" for stem, name in labels.items()))
    before = snapshot(data)
    result = invoke("data", "check", "classify", data)
    assert result.exit_code == 0, result.output
    assert "labels: metadata.csv (images: column image_id; classes: column dx)" in result.output
    sets = [item for setting in TINY_SETS + ("train.epochs=1",) for item in ("--set", setting)]
    result = invoke("train", "classify", "--data", data, "--output", tmp_path / "runs", *sets)
    assert result.exit_code == 0, result.output
    run = tmp_path / "runs" / "classify" / "exp"
    assert (run / "labels.txt").read_text().split() == ["circle", "square", "triangle"]
    assert snapshot(data) == before  # nothing written into the dataset
    (data / "metadata.csv").write_text("image_id,size\n" + "".join(
        f"{stem},1\n" for stem in labels))
    assert_one_line_error(invoke("data", "check", "classify", data),
                          "metadata.csv: which column holds the class?")


def test_a_test_table_is_the_test_split_and_kaggles_classless_one_is_left_alone(tmp_path):
    """Kaggle ships test.csv of ids without classes beside train.csv: training never reads it;
    `--split test` does, and says what is wrong with it."""
    from visionsuite.tasks.classify import TASK

    labels = _shapes_table_set(tmp_path)
    stems = sorted(labels)
    (tmp_path / "train.csv").write_text("id,label\n" + "".join(
        f"{stem},{labels[stem]}\n" for stem in stems[:9]))
    (tmp_path / "test.csv").write_text("id\n" + "".join(f"{stem}\n" for stem in stems[9:]))
    index = index_image_folders(tmp_path, val_fraction=0.34)
    assert len(index.splits["train"] + index.splits["val"]) == 9
    assert TASK.unread_test_split(tmp_path) == "test.csv"
    with pytest.raises(VisionsuiteError, match="test.csv: which column holds the class"):
        index_image_folders(tmp_path, held_out="test")
    (tmp_path / "test.csv").unlink()
    with pytest.raises(VisionsuiteError, match=r"no test split \(test.csv, or test rows of a "
                                               r"split column\)"):
        index_image_folders(tmp_path, held_out="test")
    # class folders beside a CSV that names no images: their own test/ folder, as before
    root = make_shapes_folder(tmp_path / "d", per_class=2, val_per_class=1)
    (root / "pixels.csv").write_text("label,pixel1\n3,107\n")
    shutil.copytree(root / "val", root / "test")
    assert len(index_image_folders(root, held_out="test").splits["val"]) == 3


def test_a_flat_folder_of_images_without_a_table_says_a_csv_would_label_them(tmp_path):
    labels = _shapes_table_set(tmp_path)
    assert labels
    with pytest.raises(VisionsuiteError, match=r"expected one sub-folder per class \(at least "
                                               r"2\), found 0; or a CSV labelling the images "
                                               r"\(labels.csv, train.csv\)"):
        index_image_folders(tmp_path / "images_part_1")


def test_hams_metadata_is_found_beside_its_pixel_tables(tmp_path):
    """HAM10000 as Kaggle ships it: HAM10000_metadata.csv beside hmnist_28_28_L.csv and
    friends, pixel rows that name no image."""
    labels = _shapes_table_set(tmp_path)
    (tmp_path / "HAM10000_metadata.csv").write_text("lesion_id,image_id,dx\n" + "".join(
        f"HAM_{i},{stem},{name}\n" for i, (stem, name) in enumerate(labels.items())))
    for name in ("hmnist_8_8_L.csv", "hmnist_28_28_RGB.csv"):
        (tmp_path / name).write_text("pixel0000,pixel0001,label\n" + "12,200,2\n" * 12)
    index = index_image_folders(tmp_path)
    assert index.notes == ["labels: HAM10000_metadata.csv (images: column image_id; classes: "
                           "column dx)"]
    assert len(index.splits["train"] + index.splits["val"]) == 12
    (tmp_path / "HAM10000_copy.csv").write_text(
        (tmp_path / "HAM10000_metadata.csv").read_text())  # two that label: neither is taken
    with pytest.raises(VisionsuiteError, match=r"several CSVs name its images \(HAM10000_copy"
                                               r".csv, HAM10000_metadata.csv\); rename the one "
                                               "to train on train.csv"):
        index_image_folders(tmp_path)


def test_of_several_tables_naming_images_the_one_with_classes_labels_them(tmp_path):
    """A table of image sizes beside the labels: it names the images but gives no class."""
    labels = _shapes_table_set(tmp_path)
    (tmp_path / "labels.csv").write_text("file,label\n" + "".join(
        f"{stem}.png,{name}\n" for stem, name in labels.items()))
    (tmp_path / "sizes.csv").write_text("file,width,height\n" + "".join(
        f"{stem}.png,32,32\n" for stem in labels))
    assert index_image_folders(tmp_path).notes[0].startswith("labels: labels.csv")


@pytest.mark.parametrize("column, values", [
    ("split", {"train": "train", "val": "valid", "test": "test"}),
    ("is_valid", {"train": "False", "val": "True"}),
])
def test_a_split_column_divides_one_tables_rows(tmp_path, column, values):
    """A `split` column (train, valid, test), or fastai's `is_valid` (True: val)."""
    labels = _shapes_table_set(tmp_path, per_class=6)
    stems = sorted(labels)
    chosen = {stem: "train" if number % 3 else "val" if number % 2 or "test" not in values
              else "test" for number, stem in enumerate(stems)}
    table = tmp_path / "labels.csv"
    table.write_text(f"image,label,{column}\n" + "".join(
        f"{stem},{labels[stem]},{values[chosen[stem]]}\n" for stem in stems))
    index = index_image_folders(tmp_path, val_fraction=0.5)
    assert not index.split_by_fraction
    assert index.notes[0].endswith(f"classes: column label; splits: column {column})")
    for split in ("train", "val"):
        assert sorted(path.stem for path, _ in index.splits[split]) == sorted(
            stem for stem in stems if chosen[stem] == split)
    if "test" in values:
        test = index_image_folders(tmp_path, held_out="test")
        assert sorted(path.stem for path, _ in test.splits["val"]) == sorted(
            stem for stem in stems if chosen[stem] == "test")
        hint = invoke("data", "check", "classify", tmp_path).output
        assert f"test split: the {list(chosen.values()).count('test')} rows of labels.csv " \
            "whose split is test, not read by train" in hint, hint
    else:
        with pytest.raises(VisionsuiteError, match="test rows of a split column"):
            index_image_folders(tmp_path, held_out="test")
    table.write_text(table.read_text().replace(values["val"], "holdout", 1))
    with pytest.raises(VisionsuiteError, match=r"labels.csv:\d+: split 'holdout' is none of"):
        index_image_folders(tmp_path)


def test_a_fold_column_gives_the_folds_of_a_cross_validation(tmp_path):
    """Kaggle notebooks' train_folds.csv: a `kfold` column numbers each row's fold; data.folds
    validates on the rows of data.fold, where without the column the folds are drawn."""
    from visionsuite.core.splits import Fold

    labels = _shapes_table_set(tmp_path, per_class=4)
    stems = sorted(labels)
    fold = {stem: number % 3 for number, stem in enumerate(stems)}
    table = tmp_path / "train_folds.csv"
    table.write_text("image_id,label,kfold\n" + "".join(
        f"{stem},{labels[stem]},{fold[stem]}\n" for stem in stems))
    for k in range(3):
        index = index_image_folders(tmp_path, Fold(k, 3))
        assert sorted(path.stem for path, _ in index.splits["val"]) == \
            [stem for stem in stems if fold[stem] == k]
        assert len(index.splits["train"]) == 12 - len(index.splits["val"])
    assert index.notes[0].endswith("folds for data.folds: column kfold)")
    assert index.folds_by == "column kfold"
    assert index_image_folders(tmp_path, 0.25).folds_by is None
    with pytest.raises(VisionsuiteError, match="train_folds.csv's column kfold numbers folds "
                                               "0, 1, 2, not 0 to 3"):
        index_image_folders(tmp_path, Fold(0, 4))
    assert len(index_image_folders(tmp_path, 0.25).splits["val"]) == 3  # no folds: by fraction
    table.write_text(table.read_text().replace(f"{stems[2]},{labels[stems[2]]},2",
                                               f"{stems[2]},{labels[stems[2]]},two"))
    assert len(index_image_folders(tmp_path).splits["val"]) == 3  # not asked for folds
    with pytest.raises(VisionsuiteError, match=r"train_folds.csv:4: fold 'two' is not a whole"):
        index_image_folders(tmp_path, Fold(0, 3))
