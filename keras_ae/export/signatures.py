"""The endpoints every exported model serves, named alike in SavedModel and TFLite.

    serving_default   images → reconstruction, reconstruction_error
    encode            images → latent (the VAE: z_mean, z_log_var)
    decode            latent → images
                      (a model that scores by tiles: a tile, `encoder.input_shape`)
    serving_bytes     image_bytes → what serving_default returns (SavedModel only)

A run with an anomaly detector (`anomaly.json`, `--normal_classes`) adds to
serving_default and serving_bytes `anomaly_views` (the model's
`anomaly_views`, every view computed in the graph), `anomaly_score` (their
`keras_ae.anomaly.combine`), `anomaly_map` (`[batch, height, width]`, each
pixel's score, `keras_ae.anomaly.combine_maps`, smoothed by the detector's
`map_sigma`; unsmoothed, with the "mse" score, its mean is `anomaly_score`),
`normalized_score` (the threshold at 0.5) and `is_anomaly` (score above the
threshold): `keras_ae.anomaly.Detector.outputs`. The SavedModel holds the threshold
and the views' constants as variables, the collections THRESHOLD
(`loaded.anomaly_threshold[0]`, which can be assigned) and CONSTANTS.

`images` are float32 `[batch, height, width, channels]` in [0, 1], the batch
dimension dynamic. `image_bytes` is a batch of encoded image files (PNG, JPEG,
BMP, GIF) of any size, each decoded, converted to the model's channels and
resized as the training images were (`keras_ae.images.preprocess`).
`reconstruction_error` is each image's mean squared error, usable as an
anomaly score. Everything runs with `training=False`: the VAE decodes
`z_mean`, and no signature contains a random op.

Example:

    for name, (function, spec) in functions(model).items():
        archive.add_endpoint(name, function, input_signature=[spec])
"""

import numpy as np
import tensorflow as tf

from keras_ae import anomaly
from keras_ae import data as data_lib
from keras_ae import distribute
from keras_ae import images as images_lib

RECONSTRUCT = "serving_default"
ENCODE = "encode"
DECODE = "decode"
BYTES = "serving_bytes"
NAMES = (RECONSTRUCT, ENCODE, DECODE)  # in SavedModel and TFLite
# TFLite has no image decoders: the bytes signature is the SavedModel's alone.
SAVED_MODEL_NAMES = (*NAMES, BYTES)
THRESHOLD = "anomaly_threshold"  # the SavedModel's variable collections
CONSTANTS = "anomaly_view_constants"


def encoder_output_names(model):
    """The encoder's outputs: ["latent"], or the VAE's ["z_mean", "z_log_var"]."""
    return list(model.encoder.output_names)


def functions(model, crop_to_aspect_ratio=False, detector=None, batch=None):
    """`{signature name: (function, input TensorSpec)}` for `model`.

    Each function takes its named input and returns a dict of named outputs,
    so exported signatures carry these names. `crop_to_aspect_ratio` is the
    run's, for the bytes signature's resizing; `detector`, an
    `anomaly.Detector` (threshold and constants values or variables), adds
    its outputs; `batch`, the images' batch size (None: any).
    """
    images_spec = tf.TensorSpec((batch, *model.image_shape), tf.float32, name="images")
    # The encoder's own: a tile's, for a model that scores images by tiles.
    tile_spec = tf.TensorSpec((None, *model.encoder.input_shape[1:]), tf.float32, name="images")
    latent_spec = tf.TensorSpec(
        (None, *model.decoder.input_shape[1:]), tf.float32, name="latent"
    )
    output_names = encoder_output_names(model)

    def reconstruct(images):
        images = checked(images, images_spec)
        if detector is None:
            reconstruction, served = model(images, training=False), {}
        else:  # the reconstruction of the same run of the model as the views
            reconstruction, views, served = detector.served(model, images)
            served = {"anomaly_views": views, **served}
        error = tf.reduce_mean(tf.square(reconstruction - images), axis=[1, 2, 3])
        return {"reconstruction": reconstruction, "reconstruction_error": error, **served}

    def encode(images):
        codes = tf.nest.flatten(model.encoder(checked(images, tile_spec), training=False))
        return dict(zip(output_names, codes))

    def decode(latent):
        return {"images": model.decoder(checked(latent, latent_spec), training=False)}

    image_shape = model.image_shape

    def reconstruct_bytes(image_bytes):
        pixels = tf.map_fn(
            lambda encoded: images_lib.preprocess(encoded, image_shape, crop_to_aspect_ratio),
            image_bytes, fn_output_signature=tf.TensorSpec(image_shape, tf.uint8),
        )
        return reconstruct(data_lib.to_float(pixels))

    return {
        RECONSTRUCT: (reconstruct, images_spec),
        ENCODE: (encode, tile_spec),
        DECODE: (decode, latent_spec),
        BYTES: (reconstruct_bytes, tf.TensorSpec((None,), tf.string, name="image_bytes")),
    }


def checked(tensor, spec):
    """`tensor`, failing with its name and the expected shape if it has another.

    A signature's input spec alone does not stop a request of another shape:
    convolutions accept any height and width, and the request then fails deep
    inside with "Incompatible shapes: [1,28,28,1] vs. [1,27,28,1] at node sub".
    TFLite drops the check (its inputs have fixed shapes already).
    """
    return tf.ensure_shape(tensor, spec.shape, name=f"check_{spec.name}")


def inputs(model, images):
    """The inputs of each signature for `images` (float32 in [0, 1], numpy).

    `encode` gets their top-left tiles for a model that scores by tiles,
    `decode` the deterministic codes of what `encode` gets (z_mean for the
    VAE), `serving_bytes` the images as PNG files (pixels rounded to 8 bits).
    """
    pixels = np.round(images * 255).astype(np.uint8)
    height, width = model.encoder.input_shape[1:3]
    tiles = images[:, :height, :width]
    return {
        RECONSTRUCT: {"images": images},
        ENCODE: {"images": tiles},
        DECODE: {"latent": model.encode(tiles, batch_size=256)},
        BYTES: {"image_bytes": np.array([tf.io.encode_png(p).numpy() for p in pixels],
                                        dtype=object)},
    }


def keras_outputs(model, signature_inputs, batch_size=256, detector=None):
    """What each signature should return, computed by the Keras model itself.

    Apart from `functions`: `predict` on the model and its sub-models, the
    reconstruction error in numpy, and the anomaly outputs (`detector`: an
    `anomaly.Detector`) by the Keras model's views through the detector's
    own ops (`anomaly.outputs_of`), which tests check against numpy.
    """
    images = signature_inputs[RECONSTRUCT]["images"]
    batch_size = data_lib.as_images(images).count_within(batch_size)  # large images: a few
    reconstruction = distribute.predict(model, images, batch_size)
    codes = distribute.predict(model.encoder, signature_inputs[ENCODE]["images"], batch_size)
    # The PNG files hold the images rounded to 8 bits: what the model then sees.
    decoded = np.round(images * 255).astype(np.uint8) / np.float32(255)
    decoded_reconstruction = distribute.predict(model, decoded, batch_size)
    return {
        RECONSTRUCT: _outputs(model, reconstruction, images, detector, batch_size),
        BYTES: _outputs(model, decoded_reconstruction, decoded, detector, batch_size),
        ENCODE: dict(zip(encoder_output_names(model), tf.nest.flatten(codes))),
        DECODE: {
            "images": distribute.predict(
                model.decoder, signature_inputs[DECODE]["latent"], batch_size
            )
        },
    }


def _outputs(model, reconstruction, images, detector, batch_size):
    squared = np.square(reconstruction - images).reshape(len(images), -1)
    outputs = {"reconstruction": reconstruction, "reconstruction_error": squared.mean(axis=1)}
    if detector is not None:
        served = anomaly.outputs_of(model, images, batch_size, detector=detector)
        outputs.update(anomaly_views=served["views"],
                       **{name: served[name] for name in ANOMALY_OUTPUTS})
    return outputs


# What `anomaly.Detector.outputs` serves besides the views.
ANOMALY_OUTPUTS = ("anomaly_score", "anomaly_map", "normalized_score", "is_anomaly")
