"""Batch augmentation in TensorFlow, applied inside tf.data (never part of the exported model).

Flip, rotation, zoom and shift are composed into one affine transform per image, so each image
is resampled once instead of once per Keras augmentation layer (faster, and less blur).
"""

from __future__ import annotations

import math

from visionsuite.config import AugmentConfig


def make_augment(config: AugmentConfig, seed: int | None = None):
    """A function from a float32 batch (B, H, W, C) in 0..255 to an augmented batch."""
    import tensorflow as tf

    def augment(images):
        batch = tf.shape(images)[0]
        height = tf.cast(tf.shape(images)[1], tf.float32)
        width = tf.cast(tf.shape(images)[2], tf.float32)
        if config.flip or config.rotate or config.translate or config.zoom:
            images = _affine(images, batch, height, width, config)
        if config.brightness or config.contrast:
            images = _color(images, batch, config)
        if config.erase > 0:
            images = _erase(images, batch, height, width, config.erase)
        return images

    return augment


def _uniform(batch, low, high):
    import tensorflow as tf

    return tf.random.uniform([batch], low, high)


def _affine(images, batch, height, width, config: AugmentConfig):
    import tensorflow as tf

    angle = _uniform(batch, -1.0, 1.0) * (config.rotate * math.pi / 180.0)
    scale = 1.0 + _uniform(batch, -config.zoom, config.zoom)
    shift_x = _uniform(batch, -config.translate, config.translate) * width
    shift_y = _uniform(batch, -config.translate, config.translate) * height
    flip = tf.where(_uniform(batch, 0.0, 1.0) < config.flip, -1.0, 1.0)
    # Output pixel p maps to input pixel M (p - c - t) + c, M = R(-angle) diag(flip, 1) / scale.
    cos, sin = tf.cos(angle) / scale, tf.sin(angle) / scale
    m00, m01, m10, m11 = flip * cos, sin, -flip * sin, cos
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    ox, oy = cx + shift_x, cy + shift_y
    zeros = tf.zeros([batch])
    transforms = tf.stack(
        [m00, m01, cx - m00 * ox - m01 * oy, m10, m11, cy - m10 * ox - m11 * oy, zeros, zeros],
        axis=1,
    )
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="REFLECT",
    )


def _color(images, batch, config: AugmentConfig):
    import tensorflow as tf

    if config.contrast > 0:
        factor = 1.0 + _uniform(batch, -config.contrast, config.contrast)
        mean = tf.reduce_mean(images, axis=[1, 2, 3], keepdims=True)
        images = (images - mean) * factor[:, None, None, None] + mean
    if config.brightness > 0:
        delta = _uniform(batch, -config.brightness, config.brightness) * 255.0
        images = images + delta[:, None, None, None]
    return tf.clip_by_value(images, 0.0, 255.0)


def _erase(images, batch, height, width, probability: float):
    """Cutout: a random rectangle of 2-25% of the image set to mid-grey, with `probability`."""
    import tensorflow as tf

    area = _uniform(batch, 0.02, 0.25) * height * width
    aspect = tf.exp(_uniform(batch, math.log(0.3), math.log(3.3)))
    eh = tf.minimum(tf.sqrt(area * aspect), height)
    ew = tf.minimum(tf.sqrt(area / aspect), width)
    y0 = _uniform(batch, 0.0, 1.0) * (height - eh)
    x0 = _uniform(batch, 0.0, 1.0) * (width - ew)
    ys = tf.range(height)[None, :, None]
    xs = tf.range(width)[None, None, :]
    inside = (
        (ys >= y0[:, None, None]) & (ys < (y0 + eh)[:, None, None])
        & (xs >= x0[:, None, None]) & (xs < (x0 + ew)[:, None, None])
    )
    apply = (_uniform(batch, 0.0, 1.0) < probability)[:, None, None]
    mask = tf.cast(inside & apply, images.dtype)[..., None]
    return images * (1.0 - mask) + 127.5 * mask
