"""One image preprocessing, used by training and by the exported models alike.

Encoded bytes (PNG, JPEG, BMP, GIF: TensorFlow's own decoders, as in
`keras.utils.image_dataset_from_directory`) → `decode` → uint8 pixels at their
own size and channels (alpha dropped, a GIF's first frame) → `to_channels`
(grey ↔ RGB) → `resize` (bilinear, optionally a centre crop to the target's
aspect ratio first, rounded back to uint8) → the model divides by 255.

Training stores the uint8 result of exactly these ops, and the SavedModel's
bytes signature runs them on each request, so a served image is seen as the
same image was seen in training.
"""

import tensorflow as tf

from keras_ae import choices

EXTENSIONS = choices.IMAGE_EXTENSIONS


def decode(encoded):
    """uint8 `[height, width, 1|3]` from one encoded image (a scalar string):
    the file's own size and channels, alpha dropped."""
    return drop_alpha(tf.io.decode_image(encoded, channels=0, expand_animations=False))


def drop_alpha(image):
    """uint8 `[..., 1|2|3|4]` → grey `[..., 1]` or RGB `[..., 3]` (no alpha)."""
    image = tf.convert_to_tensor(image)
    if image.shape[-1] in (1, 3):
        return image
    return tf.cond(tf.shape(image)[-1] >= 3, lambda: image[..., :3], lambda: image[..., :1])


def to_channels(image, channels):
    """uint8 grey or RGB `[..., h, w, 1|3]` → `channels` (1 or 3) channels."""
    image = tf.convert_to_tensor(image)
    if image.shape[-1] == channels:
        return image
    is_rgb = tf.shape(image)[-1] == 3
    shape = image.shape[:-1].concatenate([channels])
    if channels == 3:
        rgb = tf.cond(is_rgb, lambda: image, lambda: tf.image.grayscale_to_rgb(image[..., :1]))
        return tf.ensure_shape(rgb, shape)

    def grey():
        luma = tf.image.rgb_to_grayscale(tf.cast(image[..., :3], tf.float32))
        return tf.cast(tf.round(luma), tf.uint8)

    return tf.ensure_shape(tf.cond(is_rgb, grey, lambda: image[..., :1]), shape)


def resize(image, size, crop_to_aspect_ratio=False):
    """uint8 `[..., h, w, c]` → uint8 `[..., size[0], size[1], c]`, bilinear.

    With `crop_to_aspect_ratio` the largest centred crop of the target's
    aspect ratio is resized (no distortion), as Keras' option of that name.
    """
    height, width = size
    if crop_to_aspect_ratio:
        own_h, own_w = tf.unstack(tf.shape(image)[-3:-1])
        crop_h = tf.minimum(own_h, tf.cast(tf.round(tf.cast(own_w, tf.float32) * height / width),
                                           tf.int32))
        crop_w = tf.minimum(own_w, tf.cast(tf.round(tf.cast(own_h, tf.float32) * width / height),
                                           tf.int32))
        image = tf.image.crop_to_bounding_box(
            image, (own_h - crop_h) // 2, (own_w - crop_w) // 2, crop_h, crop_w
        )
    resized = tf.image.resize(image, (height, width), method="bilinear")
    return tf.cast(tf.round(tf.clip_by_value(resized, 0.0, 255.0)), tf.uint8)


def shaped(image, image_size=None, channels=None, crop_to_aspect_ratio=False):
    """uint8 grey or RGB `[..., h, w, 1|3]` → `channels`, then `image_size`;
    None leaves that as it is."""
    if channels is not None:
        image = to_channels(image, channels)
    if image_size is not None:
        image = resize(image, image_size, crop_to_aspect_ratio)
    return image


def preprocess(encoded, image_shape, crop_to_aspect_ratio=False):
    """Encoded bytes → uint8 `image_shape` (height, width, channels)."""
    height, width, channels = image_shape
    image = shaped(decode(encoded), (height, width), channels, crop_to_aspect_ratio)
    return tf.ensure_shape(image, image_shape)
