from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from visionsuite.core.images import (UnreadableImage, collect_images, inspect_image, read_image,
                                     stored_geometry)

RGB = np.dstack([np.full((20, 30), 200, np.uint8), np.zeros((20, 30), np.uint8),
                 np.full((20, 30), 50, np.uint8)])


@pytest.mark.parametrize("suffix", [".jpg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff",
                                    ".webp", ".avif", ".jp2", ".j2k"])
def test_every_format_decodes_to_rgb_uint8(tmp_path: Path, suffix):
    path = tmp_path / f"image{suffix}"
    Image.fromarray(RGB).save(path)
    image = read_image(path, size=16)
    assert image.shape == (16, 16, 3) and image.dtype == np.uint8
    assert abs(int(image[..., 0].mean()) - 200) < 12  # GIF's palette and JPEG may shift a bit


def test_grayscale_pgm_is_replicated_to_three_channels(tmp_path: Path):
    path = tmp_path / "gray.pgm"
    Image.fromarray(np.full((10, 10), 77, np.uint8)).save(path)
    image = read_image(path)
    assert image.shape == (10, 10, 3) and (image == 77).all()
    assert read_image(path, channels=1).shape == (10, 10, 1)


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16_bit_is_scaled_from_its_full_range(tmp_path: Path, suffix):
    path = tmp_path / f"deep{suffix}"
    values = np.array([[0, 65535], [32768, 1000]], np.uint16)
    Image.fromarray(values).save(path)
    image = read_image(path, channels=1)[..., 0]
    assert image[0, 0] == 0 and image[0, 1] == 255 and image[1, 0] == 128 and image[1, 1] == 4


@pytest.mark.parametrize("values, expected", [
    (np.array([[0.0, 1.0], [0.5, np.nan]], np.float32), [[0, 255], [128, 0]]),  # float 0..1
    (np.array([[0.0, 200.0], [100.0, 2.0]], np.float32), [[0, 200], [100, 2]]),  # float 0..255
    (np.array([[0, 65535], [32768, 1000]], np.int32), [[0, 255], [128, 4]]),  # 16-bit in 32
    (np.array([[-1000, 1000], [0, 3000]], np.int32), [[0, 128], [64, 255]]),  # signed: own range
])
def test_32_bit_integer_and_float_images_are_scaled_from_the_range_they_fit(
        tmp_path: Path, values, expected):
    path = tmp_path / "deep.tif"
    Image.fromarray(values).save(path)
    assert read_image(path, channels=1)[..., 0].tolist() == expected


def test_a_tiff_stack_reads_as_one_slice_per_page_and_a_pyramid_as_one_image(tmp_path: Path):
    from visionsuite.core.images import read_image_slices, read_mask_slices

    pages = [np.full((6, 8), value, np.uint8) for value in (10, 20, 30)]
    stack = tmp_path / "volume.tif"  # as ImageJ, Fiji and ISBI 2012 store EM stacks
    Image.fromarray(pages[0]).save(stack, save_all=True,
                                   append_images=[Image.fromarray(p) for p in pages[1:]])
    assert [s[..., 0].tolist() for s in read_image_slices(stack, 1)] == [p.tolist() for p in pages]
    assert [m.tolist() for m in read_mask_slices(stack)] == [p.tolist() for p in pages]
    deep = tmp_path / "deep.tif"  # 16-bit pages keep the fixed 0..65535 scale
    Image.fromarray(np.full((6, 8), 65535, np.uint16)).save(
        deep, save_all=True, append_images=[Image.fromarray(np.zeros((6, 8), np.uint16))])
    assert [int(s.max()) for s in read_image_slices(deep, 1)] == [255, 0]
    pyramid = tmp_path / "pyramid.tif"  # a smaller second page is no slice: one image
    Image.fromarray(pages[0]).save(pyramid, save_all=True,
                                   append_images=[Image.fromarray(pages[1][:3, :4])])
    assert [s.shape for s in read_image_slices(pyramid, 3)] == [(6, 8, 3)]
    assert read_image(stack, channels=1)[..., 0].tolist() == pages[0].tolist()  # first page


@pytest.mark.parametrize("maximum, window", [
    (0, [127.5, 255.0]), (255, [127.5, 255.0]), (256, [255.5, 511.0]),  # 8-bit values
    (1023, [511.5, 1023.0]), (3000, [2047.5, 4095.0]), (4095, [2047.5, 4095.0]),  # 10, 12-bit
    (4096, [4095.5, 8191.0]), (65535, [32767.5, 65535.0]),
])
def test_a_sets_bit_depth_is_the_smallest_that_holds_its_largest_value(maximum, window):
    from visionsuite.core.images import bit_depth_window

    assert bit_depth_window(maximum) == window


def test_a_window_maps_16_bit_pages_and_the_deepest_value_is_measured_over_them(
        tmp_path: Path):
    from visionsuite.core.images import deep_maximum, read_image_slices
    from visionsuite.errors import VisionsuiteError

    stack = tmp_path / "twelve.tif"  # a 12-bit camera's pages
    Image.fromarray(np.array([[0, 4095]], np.uint16)).save(
        stack, save_all=True, append_images=[Image.fromarray(np.array([[2048, 5000]],
                                                                      np.uint16))])
    assert deep_maximum(stack) == 5000
    pages = read_image_slices(stack, 1, [2047.5, 4095.0])
    assert [page[..., 0].tolist() for page in pages] == [[[0, 255]], [[128, 255]]]  # clipped
    assert [page[..., 0].tolist() for page in read_image_slices(stack, 1)] == \
        [[[0, 16]], [[8, 19]]]  # without one, from 0..65535: 16 grey levels for 12 bits
    eight = tmp_path / "eight.png"
    Image.fromarray(np.array([[0, 200]], np.uint8)).save(eight)
    assert deep_maximum(eight) is None  # not deep: no window applies to it
    assert read_image_slices(eight, 1, [2047.5, 4095.0])[0][..., 0].tolist() == [[0, 200]]
    with pytest.raises(VisionsuiteError, match=r"data.window must be \[center, width\]"):
        read_image_slices(stack, 1, [100.0, 0.0])


def save_hyperstack(path: Path, pages: list[np.ndarray], channels: int) -> Path:
    """A TIFF as Fiji saves a hyperstack: `pages` in ImageJ's order (channel first), its
    ImageDescription naming the channels."""
    from PIL import TiffImagePlugin

    description = TiffImagePlugin.ImageFileDirectory_v2()
    description[270] = (f"ImageJ=1.54f\nimages={len(pages)}\nchannels={channels}\n"
                        f"slices={len(pages) // channels}\nhyperstack=true\nmode=composite\n")
    Image.fromarray(pages[0]).save(path, save_all=True, tiffinfo=description,
                                   append_images=[Image.fromarray(p) for p in pages[1:]])
    return path


def test_an_imagej_hyperstack_reads_as_slices_of_its_channels(tmp_path: Path):
    from visionsuite.core.images import read_image_slices, tiff_channels, tiff_stack_depth

    # 3 slices of 2 channels, 12-bit: page k holds slice k // 2, channel k % 2
    pages = [np.full((4, 5), 1000 * (k // 2) + k % 2 * 4000, np.uint16) for k in range(6)]
    stack = save_hyperstack(tmp_path / "cells.tif", pages, channels=2)
    assert tiff_channels(stack) == 2 and tiff_stack_depth(stack) == 3
    slices = read_image_slices(stack, 2, [2047.5, 4095.0])
    assert [s.shape for s in slices] == [(4, 5, 2)] * 3
    assert [s[0, 0].tolist() for s in slices] == [[0, 249], [62, 255], [125, 255]]
    with pytest.raises(UnreadableImage, match="2 channels \\(a multi-channel TIFF\\), but the "
                                              "model takes 3"):
        read_image_slices(stack, 3)
    # Without channels (a plain stack, one channel of ImageJ's, or pages that do not divide
    # into them) every page is a slice.
    for name, count in (("plain.tif", None), ("one.tif", 1), ("odd.tif", 4)):
        path = tmp_path / name
        if count is None:
            Image.fromarray(pages[0]).save(path, save_all=True,
                                           append_images=[Image.fromarray(p) for p in pages[1:]])
        else:
            save_hyperstack(path, pages, channels=count)
        assert tiff_channels(path) == 1 and tiff_stack_depth(path) == 6, name


@pytest.mark.parametrize("order, page_of", [
    ("XYCZT", lambda c, z: 2 * z + c),  # the channels of each slice together
    ("XYZCT", lambda c, z: 3 * c + z),  # every slice of one channel, then the next
])
def test_an_ome_tiff_reads_as_slices_of_its_channels_in_its_dimension_order(
        tmp_path: Path, order, page_of):
    from PIL import TiffImagePlugin

    from visionsuite.core.images import read_image_slices, tiff_channels, tiff_stack_depth

    pages = [np.full((4, 5), 10 * page, np.uint8) for page in range(6)]  # 2 channels, 3 z
    description = TiffImagePlugin.ImageFileDirectory_v2()
    description[270] = (
        '<?xml version="1.0" encoding="UTF-8"?><OME xmlns="http://www.openmicroscopy.org/'
        'Schemas/OME/2016-06"><Image ID="Image:0"><Pixels ID="Pixels:0" DimensionOrder='
        f'"{order}" Type="uint8" SizeX="5" SizeY="4" SizeC="2" SizeZ="3" SizeT="1">'
        '<Channel ID="Channel:0:0" SamplesPerPixel="1"/><TiffData/></Pixels></Image></OME>')
    path = tmp_path / "cells.ome.tif"
    Image.fromarray(pages[0]).save(path, save_all=True, tiffinfo=description,
                                   append_images=[Image.fromarray(p) for p in pages[1:]])
    assert tiff_channels(path) == 2 and tiff_stack_depth(path) == 3
    slices = read_image_slices(path, 2)
    assert [s[0, 0].tolist() for s in slices] == \
        [[10 * page_of(0, z), 10 * page_of(1, z)] for z in range(3)]


def test_transparent_pixels_become_white(tmp_path: Path):
    path = tmp_path / "alpha.png"
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[0, 0] = (255, 0, 0, 255)  # one opaque red pixel, the rest fully transparent black
    Image.fromarray(rgba, "RGBA").save(path)
    image = read_image(path)
    assert tuple(image[0, 0]) == (255, 0, 0)
    assert tuple(image[3, 3]) == (255, 255, 255)


def test_exif_orientation_is_applied(tmp_path: Path):
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    Image.fromarray(np.zeros((10, 20, 3), np.uint8)).save(path, exif=exif)
    assert read_image(path).shape == (20, 10, 3)


FIXTURES = Path(__file__).parent / "fixtures"


def test_iphone_heic_photos_are_read_upright(tmp_path: Path):
    # turned.heic: 32x24 pixels stored with a red block top-left, and the HEIF rotation (and EXIF
    # orientation 6) of a phone held upright; shown, it is 24 wide and the block is top-right.
    unnamed = tmp_path / "IMG_0001"  # the same file without its extension: known by its bytes
    unnamed.write_bytes((FIXTURES / "turned.heic").read_bytes())
    assert collect_images([str(tmp_path)]) == [unnamed]
    for path in (FIXTURES / "turned.heic", unnamed):
        image = read_image(path)
        assert image.shape == (32, 24, 3)
        assert image[:8, -8:, 0].mean() > 200 and image[-8:, :8, 0].mean() < 60
        assert inspect_image(path) == ((24, 32), "RGB")
        assert stored_geometry(path) == ((24, 32), 1)  # turned once, by the decoder only
    truncated = tmp_path / "cut.heic"
    truncated.write_bytes((FIXTURES / "turned.heic").read_bytes()[:300])
    with pytest.raises(UnreadableImage, match="cut.heic: unreadable image"):
        read_image(truncated)


def test_truncated_jpeg_and_text_named_jpg_are_unreadable(tmp_path: Path):
    good = tmp_path / "good.jpg"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good.read_bytes()[:300])
    text = tmp_path / "notes.jpg"
    text.write_text("this is not an image")
    for path in (truncated, text):
        with pytest.raises(UnreadableImage) as error:
            read_image(path, 32)
        assert str(path) in str(error.value) and "unreadable image" in str(error.value)
    assert "not an image file" in str(pytest.raises(UnreadableImage, read_image, text).value)


def test_collect_images_walks_folders_and_reports_missing(tmp_path: Path):
    (tmp_path / "a").mkdir()
    Image.fromarray(RGB).save(tmp_path / "a" / "x.png")
    (tmp_path / "a" / "readme.txt").write_text("ignored")
    for junk in (".ipynb_checkpoints", "__MACOSX"):  # copies and metadata, not images to run
        (tmp_path / "a" / junk).mkdir()
        Image.fromarray(RGB).save(tmp_path / "a" / junk / "x-checkpoint.png")
    assert collect_images([str(tmp_path)]) == [tmp_path / "a" / "x.png"]
    named = tmp_path / "a" / ".." / "a" / "x.png"  # named, and in a folder named: read once
    assert collect_images([str(tmp_path), str(named), str(named)]) == [tmp_path / "a" / "x.png"]
    with pytest.raises(Exception, match="no such file"):
        collect_images([str(tmp_path / "missing.png")])


def test_collect_images_leaves_out_visionsuites_own_outputs_inside_a_searched_folder(
        tmp_path: Path, monkeypatch, capsys):
    # `visionsuite segment RUN .` run twice: the first run's masks sit in ./runs/segment/predict
    monkeypatch.chdir(tmp_path)
    for folder in ("photos", "runs/segment/predict", "masks"):
        (tmp_path / folder).mkdir(parents=True)
        Image.fromarray(RGB).save(tmp_path / folder / "x.png")
    assert collect_images(["."], outputs=("masks",)) == [Path("photos/x.png")]
    assert "left out 2 image(s)" in capsys.readouterr().err
    # named directly, or searched from inside, an output folder is read like any other
    assert collect_images(["runs"]) == [Path("runs/segment/predict/x.png")]
    assert collect_images(["masks"], outputs=("masks",)) == [Path("masks/x.png")]
    assert collect_images([str(tmp_path / "photos" / ".."), "photos/x.png"]) == [
        tmp_path / "photos" / ".." / "masks" / "x.png",
        tmp_path / "photos" / ".." / "photos" / "x.png"]  # photos/x.png: found already
    assert capsys.readouterr().err.count("left out 1 image(s)") == 1


def test_images_are_known_by_their_bytes_when_their_extension_does_not_say(tmp_path: Path):
    grey = np.arange(48, dtype=np.uint8).reshape(6, 8)
    # The classic Yale faces: GIFs named subject01.happy; a PGM and a WebP named as such too.
    # A file renamed to be left out (Extended Yale B's *.pgm.bad) stays out.
    for name, fmt in (("subject01.happy", "GIF"), ("subject01.glasses", "PNG"),
                      ("scan.raw", "PPM"), ("photo.webp", "WEBP"), ("old.bin", "BMP"),
                      ("tile.img", "JPEG2000")):
        Image.fromarray(grey).save(tmp_path / name, format=fmt, lossless=True)
    Image.fromarray(grey).save(tmp_path / "yaleB11_P00A+050E-40.pgm.bad", format="PPM")
    (tmp_path / "notes.info").write_text("P5 is not how this file starts\n")
    (tmp_path / "labels.txt").write_text("BM......\n")
    found = collect_images([str(tmp_path)])
    assert [path.name for path in found] == ["old.bin", "photo.webp", "scan.raw",
                                             "subject01.glasses", "subject01.happy", "tile.img"]
    for path in found:
        assert np.array_equal(read_image(path, channels=1)[..., 0], grey), path.name


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_colour_of_16_bits_a_channel_keeps_its_low_bits(tmp_path: Path, suffix):
    """48-bit PNGs and TIFFs: Pillow kept the top byte of each value, so a 12-bit camera's
    colour came out as 0..15. Read as 16-bit grey is (from 0..65535, or through a window),
    its bit depth measured, and named RGB;16 by data check."""
    import cv2

    from visionsuite.core.data import bit_depth_check
    from visionsuite.core.images import deep_maximum, inspect_image, read_image_slices

    ramp = np.tile(np.linspace(0, 4095, 32).round().astype(np.uint16), (8, 1))
    rgb = np.stack([ramp, ramp // 2, ramp // 4], axis=-1)
    path = tmp_path / f"twelve{suffix}"
    cv2.imwrite(str(path), rgb[..., ::-1])  # OpenCV writes BGR
    assert inspect_image(path) == ((32, 8), "RGB;16")
    assert inspect_image(path, decode=False)[1] == "RGB;16"
    assert deep_maximum(path) == 4095
    assert read_image(path)[0, -1].tolist() == [16, 8, 4]  # from 0..65535, as grey
    window = [2047.5, 4095.0]
    image = read_image(path, window=window)
    assert image[0, -1].tolist() == [255, 127, 64] and image[0, 0].tolist() == [0, 0, 0]
    assert np.array_equal(read_image_slices(path, 3, window)[0], image)
    assert read_image(path, channels=1, window=window).shape == (8, 32, 1)
    assert bit_depth_check([path], {"RGB;16": 1}) == (window, [
        "16-bit images with values up to 4095: read as 12-bit, 0..4095 to 0..255 "
        "(data.window=[2047.5, 4095.0]) by a new run; set data.window to read another range"])
    assert bit_depth_check([path], {"RGB": 1}) == (None, [])  # no 16-bit mode: not measured


def test_colour_of_16_bits_a_channel_with_alpha_is_composited_on_white(tmp_path: Path):
    import cv2

    rgba = np.zeros((4, 4, 4), np.uint16)
    rgba[..., 3] = 65535
    rgba[0, 0, 3] = 0  # transparent: white
    path = tmp_path / "sixty-four.png"
    cv2.imwrite(str(path), rgba[..., [2, 1, 0, 3]])  # BGRA
    image = read_image(path)
    assert image[0, 0].tolist() == [255, 255, 255] and image[1, 1].tolist() == [0, 0, 0]
