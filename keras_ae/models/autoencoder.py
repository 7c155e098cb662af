"""The base class every variant builds on: images → encoder → decoder → images."""

import keras


class Autoencoder(keras.Model):
    """A functional autoencoder with named `encoder` and `decoder` sub-models.

    Subclasses create their encoder (input `images`, output `latent`) and decoder
    (input `latent`, output `reconstruction`) with the functional API and pass
    them here; this wires `images → encoder → decoder` into one functional
    model, so the whole autoencoder, the encoder alone and the decoder alone can
    each be called, saved, exported and plotted. Subclasses record their
    constructor arguments in `get_config`.

    `compile()` defaults to the reference tutorial's recipe: mean squared
    error, Adam with learning rate 1e-3.
    """

    def __init__(self, encoder, decoder, **kwargs):
        images = keras.Input(shape=encoder.input_shape[1:], name="images")
        super().__init__(inputs=images, outputs=decoder(encoder(images)), **kwargs)
        self.encoder = encoder
        self.decoder = decoder

    def compile(self, optimizer=None, loss="mean_squared_error", **kwargs):
        if optimizer is None:
            optimizer = keras.optimizers.Adam(learning_rate=1e-3)
        super().compile(optimizer=optimizer, loss=loss, **kwargs)

    def compile_from_config(self, config):
        # Keras skips restoring the compile state of models that override
        # compile(); this one only adds defaults, so the saved arguments apply.
        self.compile(**keras.saving.deserialize_keras_object(config))
        if self.built:
            self.optimizer.build(self.trainable_variables)

    def get_config(self):
        # Not Functional's config: subclasses rebuild from their own arguments.
        return {
            "name": self.name,
            "trainable": self.trainable,
            "input_shape": tuple(self.input_shape[1:]),
        }
