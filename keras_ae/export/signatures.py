"""The endpoints every exported model serves, named alike in SavedModel and TFLite.

    serving_default   images → reconstruction, reconstruction_error
    encode            images → latent (the VAE: z_mean, z_log_var)
    decode            latent → images

`images` are float32 `[batch, height, width, channels]` in [0, 1], the batch
dimension dynamic. `reconstruction_error` is each image's mean squared error,
usable as an anomaly score. Everything runs with `training=False`: the VAE
decodes `z_mean`, and no signature contains a random op.

Example:

    for name, (function, spec) in functions(model).items():
        archive.add_endpoint(name, function, input_signature=[spec])
"""

import numpy as np
import tensorflow as tf

from keras_ae import distribute

RECONSTRUCT = "serving_default"
ENCODE = "encode"
DECODE = "decode"
NAMES = (RECONSTRUCT, ENCODE, DECODE)


def encoder_output_names(model):
    """The encoder's outputs: ["latent"], or the VAE's ["z_mean", "z_log_var"]."""
    return list(model.encoder.output_names)


def functions(model):
    """`{signature name: (function, input TensorSpec)}` for `model`.

    Each function takes its named input and returns a dict of named outputs,
    so exported signatures carry these names.
    """
    images_spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32, name="images")
    latent_spec = tf.TensorSpec(
        (None, *model.decoder.input_shape[1:]), tf.float32, name="latent"
    )
    output_names = encoder_output_names(model)

    def reconstruct(images):
        images = checked(images, images_spec)
        reconstruction = model(images, training=False)
        error = tf.reduce_mean(tf.square(reconstruction - images), axis=[1, 2, 3])
        return {"reconstruction": reconstruction, "reconstruction_error": error}

    def encode(images):
        codes = tf.nest.flatten(model.encoder(checked(images, images_spec), training=False))
        return dict(zip(output_names, codes))

    def decode(latent):
        return {"images": model.decoder(checked(latent, latent_spec), training=False)}

    return {
        RECONSTRUCT: (reconstruct, images_spec),
        ENCODE: (encode, images_spec),
        DECODE: (decode, latent_spec),
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

    `decode` gets the deterministic codes of the same images (z_mean for the VAE).
    """
    return {
        RECONSTRUCT: {"images": images},
        ENCODE: {"images": images},
        DECODE: {"latent": model.encode(images, batch_size=256)},
    }


def keras_outputs(model, signature_inputs, batch_size=256):
    """What each signature should return, computed by the Keras model itself.

    Independent of `functions`: `predict` on the model and its sub-models, and
    the reconstruction error in numpy, so a mistake there shows as a mismatch.
    """
    images = signature_inputs[RECONSTRUCT]["images"]
    reconstruction = distribute.predict(model, images, batch_size)
    codes = distribute.predict(model.encoder, images, batch_size)
    return {
        RECONSTRUCT: {
            "reconstruction": reconstruction,
            "reconstruction_error": np.mean(
                np.square(reconstruction - images), axis=(1, 2, 3)
            ),
        },
        ENCODE: dict(zip(encoder_output_names(model), tf.nest.flatten(codes))),
        DECODE: {
            "images": distribute.predict(
                model.decoder, signature_inputs[DECODE]["latent"], batch_size
            )
        },
    }
