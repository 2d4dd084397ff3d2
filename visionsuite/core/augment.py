"""Batch augmentation in TensorFlow, applied inside tf.data (never part of the exported model).

Flip, rotation, zoom and shift are composed into one affine transform per image, so each image
is resampled once instead of once per Keras augmentation layer (faster, and less blur). The
whole augmentation is one XLA-compiled function, the resampling written as gathers: 8.5 ms ->
5.0 ms per batch of 32 images of 96x96 against TensorFlow's ImageProjectiveTransformV3 kernel
and separate ops. On 2 cores every millisecond of augmentation is taken from the training step.

Segmentation masks go through the same transform, sampled nearest-neighbour so that class
indices stay class indices; colour changes and erasing touch only the images.

Every random number comes from a stateless generator and the batch's seed, which tf.data hands
out in a fixed order: a batch is augmented alike whichever thread runs it, so that a run can be
repeated exactly.
"""

from __future__ import annotations

import math

from visionsuite.config import AugmentConfig

# The augment switches (config.AUGMENT_SWITCHES) that make_augment applies.
AUGMENTATIONS = ("flip", "vflip", "rotate", "rotate90", "translate", "zoom", "brightness",
                 "contrast", "erase", "elastic")


def make_augment(config: AugmentConfig, crop_size: int | None = None):
    """A function from a batch (B, H, W, C) in 0..255 (any number type), and optionally integer
    masks (B, H, W), to the augmented float32 batch (and masks, when given). Its `seed`, two
    integers, decides every random choice; without one, a random seed is drawn.

    With `crop_size`, each image yields one random crop_size x crop_size crop (segmentation
    trains on crops of larger images); with config.foreground_crops and masks, that share of
    the crops is centred on a random labelled pixel (mask value neither 0 nor 255, which marks
    pixels left out) of a random class of its image, where it has one; or, where `on_labels`
    (B,) is given (segment's labelled_crop_batches chose those images for it), the crops it
    marks."""
    import tensorflow as tf

    geometric = bool(config.flip or config.vflip or config.rotate or config.rotate90
                     or config.translate or config.zoom or config.elastic or crop_size)
    # Flips, quarter turns and whole-pixel shifts and crops map pixels onto pixels, where
    # bilinear sampling is nearest sampling: then one gather instead of four, on the input's own
    # (uint8) values before the cast to float32: segment's input 11.8 -> 7.0 ms a batch here.
    whole_pixels = not (config.rotate or config.zoom or config.elastic)

    @tf.function(jit_compile=True)
    def augment(images, masks=None, seed=None, on_labels=None):
        if seed is None:
            seed = tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int32)
        draw = _Draws(seed)
        batch = tf.shape(images)[0]
        # Per-image sizes, (B,): every image of a batch has the batch's size here.
        heights = tf.fill([batch], tf.cast(tf.shape(images)[1], tf.float32))
        widths = tf.fill([batch], tf.cast(tf.shape(images)[2], tf.float32))
        out_h, out_w = (crop_size, crop_size) if crop_size else (tf.shape(images)[1],
                                                                 tf.shape(images)[2])
        if geometric:
            centers = (_foreground_centers(draw, masks, config.foreground_crops, on_labels)
                       if crop_size and masks is not None and config.foreground_crops else None)
            transforms = _random_affine(draw, batch, heights, widths, out_h, out_w, config,
                                        random_center=bool(crop_size), centers=centers)
            displacement = (_elastic_field(draw, batch, out_h, out_w, config.elastic,
                                           config.elastic_grid) if config.elastic else None)
            coords = _source_coordinates(transforms, heights, widths, out_h, out_w,
                                         displacement)
            images = (_nearest(images, *coords) if whole_pixels
                      else _bilinear(tf.cast(images, tf.float32), *coords))
            if masks is not None:
                masks = _nearest(masks, *coords)
        images = tf.cast(images, tf.float32)
        if config.brightness or config.contrast:
            images = _color(draw, images, batch, config)
        if config.erase > 0:
            images = _erase(draw, images, batch, config.erase)
        return images if masks is None else (images, masks)

    return augment


class _Draws:
    """Uniform draws of one batch, each from its own fold of the batch's seed."""

    def __init__(self, seed):
        self.seed, self.count = seed, 0

    def __call__(self, batch, low, high):
        import tensorflow as tf

        return tf.random.stateless_uniform([batch], self.next_seed(), low, high)

    def next_seed(self):
        import tensorflow as tf

        self.count += 1  # counted while tracing: the n-th draw always gets the n-th fold
        return tf.random.experimental.stateless_fold_in(self.seed, self.count)


def _foreground_centers(draw, masks, share: float, on_labels=None):
    """(x, y, chosen), each (B,): a random labelled pixel of each mask (value neither 0 nor
    255) of a class drawn among those it holds, each class equally likely, and whether its
    crop is to be centred there, where the mask has one: as `on_labels` marks, else with
    probability `share`. Drawing the class first is nnU-Net's rule: an enhancing tumour's
    few pixels get as many crops as the edema around it, which would otherwise take most."""
    import tensorflow as tf

    batch, width = tf.shape(masks)[0], tf.shape(masks)[2]
    values = tf.reshape(tf.cast(masks, tf.int32), [batch, -1])
    labelled = (values > 0) & (values != 255)
    # Each class (a uint8 mask value) gets one uniform draw per mask; the labelled class of
    # the largest is taken.
    class_draws = tf.random.stateless_uniform([batch, 256], draw.next_seed())
    drawn = tf.where(labelled, tf.gather(class_draws, values, batch_dims=1), -1.0)
    taken = tf.gather(values, tf.argmax(drawn, axis=1, output_type=tf.int32), batch_dims=1)
    # the pixel of that class with the largest uniform draw: each equally likely
    noise = tf.random.stateless_uniform(tf.shape(labelled), draw.next_seed())
    index = tf.argmax(tf.where(labelled & (values == taken[:, None]), noise, -1.0), axis=1,
                      output_type=tf.int32)
    wanted = draw(batch, 0.0, 1.0) < share if on_labels is None else on_labels
    chosen = tf.reduce_any(labelled, axis=1) & wanted
    return (tf.cast(index % width, tf.float32), tf.cast(index // width, tf.float32), chosen)


def _random_affine(draw, batch, heights, widths, out_h, out_w, config: AugmentConfig,
                   random_center: bool, centers=None):
    """(B, 6) rows [a0 a1 a2 b0 b1 b2]: output pixel (x, y) samples input pixel
    (a0 x + a1 y + a2, b0 x + b1 y + b2). The output's centre lands on the image's centre, or
    with `random_center` on a random point at least half an output away from the borders;
    where `centers` (_foreground_centers) chose one, on its point, moved as little as keeps
    the output inside the image.
    Without free rotation and zoom, flips, quarter turns and whole-pixel shifts map pixels onto
    pixels: then nothing is interpolated, and training crops are as sharp as the images
    inference sees (a random sub-pixel offset would blur every crop by up to half a pixel,
    which thin structures such as membranes and vessels do not survive)."""
    import tensorflow as tf

    out_h, out_w = tf.cast(out_h, tf.float32), tf.cast(out_w, tf.float32)
    angle = draw(batch, -1.0, 1.0) * (config.rotate * math.pi / 180.0)
    scale = 1.0 + draw(batch, -config.zoom, config.zoom)
    flip_x = tf.where(draw(batch, 0.0, 1.0) < config.flip, -1.0, 1.0)
    flip_y = tf.where(draw(batch, 0.0, 1.0) < config.vflip, -1.0, 1.0)
    if random_center:
        span_x, span_y = tf.maximum(widths - out_w, 0.0), tf.maximum(heights - out_h, 0.0)
        center_x = (widths - 1.0) / 2.0 + (draw(batch, 0.0, 1.0) - 0.5) * span_x
        center_y = (heights - 1.0) / 2.0 + (draw(batch, 0.0, 1.0) - 0.5) * span_y
        if centers is not None:
            point_x, point_y, chosen = centers
            inside_x = tf.clip_by_value(point_x, (widths - 1.0 - span_x) / 2.0,
                                        (widths - 1.0 + span_x) / 2.0)
            inside_y = tf.clip_by_value(point_y, (heights - 1.0 - span_y) / 2.0,
                                        (heights - 1.0 + span_y) / 2.0)
            center_x = tf.where(chosen, inside_x, center_x)
            center_y = tf.where(chosen, inside_y, center_y)
    else:
        center_x, center_y = (widths - 1.0) / 2.0, (heights - 1.0) / 2.0
    center_x += draw(batch, -config.translate, config.translate) * out_w
    center_y += draw(batch, -config.translate, config.translate) * out_h
    # Input = M (p - c_out) + center, M = R(-angle) diag(flip_x, flip_y) / scale.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    # A quarter turn: (cos, sin) of angle + 90 degrees, exactly (tf.cos(pi / 2) is not 0).
    quarter = draw(batch, 0.0, 1.0) < config.rotate90
    cos, sin = tf.where(quarter, -sin, cos), tf.where(quarter, cos, sin)
    m00, m01, m10, m11 = flip_x * cos, flip_y * sin, -flip_x * sin, flip_y * cos
    ox, oy = (out_w - 1.0) / 2.0, (out_h - 1.0) / 2.0
    offset_x, offset_y = center_x - m00 * ox - m01 * oy, center_y - m10 * ox - m11 * oy
    if not config.rotate and not config.zoom:
        offset_x, offset_y = tf.round(offset_x), tf.round(offset_y)
    return tf.stack([m00, m01, offset_x, m10, m11, offset_y], axis=1)


def _elastic_field(draw, batch, out_h, out_w, sigma: float, grid: int):
    """(dy, dx), each (B, out_h, out_w): a smooth random displacement of every output pixel,
    N(0, sigma^2) pixels, from Gaussian values at the nodes of a grid x grid lattice spanning
    the output (the U-Net paper's elastic deformation: 3x3 nodes, 10 px). Between nodes it is
    blended with a Gaussian kernel of half the node spacing, its weights scaled to unit norm so
    that every pixel keeps the nodes' variance; two matrix products, which XLA compiles."""
    import tensorflow as tf

    def weights(size):  # (size, grid): each output row's share of each grid node
        position = tf.range(tf.cast(size, tf.float32)) / tf.maximum(
            tf.cast(size, tf.float32) - 1.0, 1.0) * (grid - 1)
        kernel = tf.exp(-2.0 * tf.square(position[:, None] - tf.range(float(grid))[None, :]))
        return kernel / tf.norm(kernel, axis=1, keepdims=True)

    rows, cols = weights(out_h), weights(out_w)
    fields = []
    for _ in range(2):
        # normal values from the batch's uniform draws (inverse CDF), seeded as every draw is
        nodes = tf.reshape(draw(batch * grid * grid, 1e-6, 1.0 - 1e-6), [batch, grid, grid])
        nodes = sigma * math.sqrt(2.0) * tf.math.erfinv(2.0 * nodes - 1.0)
        fields.append(tf.einsum("hi,bij,wj->bhw", rows, nodes, cols))
    return fields


def _source_coordinates(transforms, heights, widths, out_h, out_w, displacement=None):
    """Where each output pixel samples its image, reflected at that image's borders
    (d c b | a b c d | c b a), so that no invented fill value enters images or masks. An
    elastic `displacement` (dy, dx) moves each output pixel before the affine transform."""
    import tensorflow as tf

    ys, xs = tf.meshgrid(tf.range(tf.cast(out_h, tf.float32)),
                         tf.range(tf.cast(out_w, tf.float32)), indexing="ij")
    if displacement is not None:
        ys, xs = ys + displacement[0], xs + displacement[1]
    row = [transforms[:, i, None, None] for i in range(6)]
    source_x = row[0] * xs + row[1] * ys + row[2]
    source_y = row[3] * xs + row[4] * ys + row[5]
    return (_reflect(source_y, heights[:, None, None]),
            _reflect(source_x, widths[:, None, None]))


def _reflect(coordinate, size):
    import tensorflow as tf

    period = tf.maximum(2.0 * (size - 1.0), 1.0)
    folded = tf.math.floormod(tf.abs(coordinate), period)
    return tf.where(folded > size - 1.0, period - folded, folded)


def _gather(images, ys, xs):
    """images[b, ys[b, i, j], xs[b, i, j]] for every b, as one flat gather."""
    import tensorflow as tf

    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    flat = tf.reshape(images, tf.concat([[-1], shape[3:]], 0))
    offsets = tf.range(batch)[:, None, None] * height * width
    return tf.gather(flat, offsets + ys * width + xs)


def _bilinear(images, source_y, source_x):
    import tensorflow as tf

    y0, x0 = tf.floor(source_y), tf.floor(source_x)
    fy, fx = (source_y - y0)[..., None], (source_x - x0)[..., None]
    y0, x0 = tf.cast(y0, tf.int32), tf.cast(x0, tf.int32)
    # +1 may step onto padding only where the weight of that neighbour is 0.
    y1 = tf.minimum(y0 + 1, tf.shape(images)[1] - 1)
    x1 = tf.minimum(x0 + 1, tf.shape(images)[2] - 1)
    top = _gather(images, y0, x0) * (1.0 - fx) + _gather(images, y0, x1) * fx
    bottom = _gather(images, y1, x0) * (1.0 - fx) + _gather(images, y1, x1) * fx
    return top * (1.0 - fy) + bottom * fy


def _nearest(masks, source_y, source_x):
    import tensorflow as tf

    ys = tf.cast(tf.round(source_y), tf.int32)
    xs = tf.cast(tf.round(source_x), tf.int32)
    return _gather(masks, ys, xs)


def _color(draw, images, batch, config: AugmentConfig):
    import tensorflow as tf

    if config.contrast > 0:
        factor = 1.0 + draw(batch, -config.contrast, config.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * factor[:, None, None, None] + mean
    if config.brightness > 0:
        delta = draw(batch, -config.brightness, config.brightness) * 255.0
        images = images + delta[:, None, None, None]
    return tf.clip_by_value(images, 0.0, 255.0)


def _erase(draw, images, batch, probability: float):
    """Cutout: a random rectangle of 2-25% of the image set to mid-grey, with `probability`."""
    import tensorflow as tf

    height = tf.cast(tf.shape(images)[1], tf.float32)
    width = tf.cast(tf.shape(images)[2], tf.float32)
    area = draw(batch, 0.02, 0.25) * height * width
    aspect = tf.exp(draw(batch, math.log(0.3), math.log(3.3)))
    eh = tf.minimum(tf.sqrt(area * aspect), height)
    ew = tf.minimum(tf.sqrt(area / aspect), width)
    y0 = draw(batch, 0.0, 1.0) * (height - eh)
    x0 = draw(batch, 0.0, 1.0) * (width - ew)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = (
        (ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
        & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None])
    )
    apply = (draw(batch, 0.0, 1.0) < probability)[:, None, None]
    mask = tf.cast(inside & apply, images.dtype)[..., None]
    return images * (1.0 - mask) + 127.5 * mask
