"""Strategies: the name switch, and two real replicas matching one device."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_ae
from keras_ae import data, distribute
from tests.conftest import make_images


def test_unknown_strategy_lists_the_valid_ones():
    with pytest.raises(ValueError, match="valid strategies: default, one_device, mirrored"):
        distribute.get_strategy("nope")


def test_mirrored_without_gpus_uses_every_logical_cpu():
    # conftest split the CPU into two logical devices.
    assert distribute.get_strategy("mirrored").num_replicas_in_sync == 2
    assert distribute.get_strategy("one_device").num_replicas_in_sync == 1


def _train(strategy, variant, options, initial_weights, images, steps, learning_rate):
    with strategy.scope():
        model = keras_ae.build(variant, images.shape[1:], **options)
        model.set_weights(initial_weights)
        # Plain SGD: a step's size is proportional to the loss scale, so a loss
        # summed instead of averaged across replicas would double it. (Adam
        # normalizes the gradient and would hide that.)
        model.compile(optimizer=keras.optimizers.SGD(learning_rate=learning_rate))
    stream = data.train_dataset(
        images, batch_size=8, epochs=1, noise_stddev=0.2, seed=4
    )
    model.fit(stream, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    return model.get_weights()


SMALL = {"latent_dim": 4, "filters": (4, 8)}


@pytest.mark.parametrize(
    "variant, options, learning_rate",
    [
        ("linear", {"latent_dim": 4}, 0.5),
        ("conv", SMALL, 0.5),
        ("denoising", SMALL, 0.5),
        ("vae", SMALL, 2e-3),  # its loss is summed over pixels
        ("sparse", {**SMALL, "sparsity": "l1", "sparsity_weight": 0.05}, 0.5),
        ("sparse", {**SMALL, "sparsity": "kl", "sparsity_weight": 0.05}, 0.5),
        ("contractive", {**SMALL, "contractive_weight": 1.0}, 0.5),
        ("contractive", {**SMALL, "contractive_weight": 1.0, "jacobian": "estimate",
                         "jacobian_samples": 2}, 0.5),
    ],
)
def test_two_replicas_match_one_device(variant, options, learning_rate):
    images = make_images(32, seed=0, height=8, width=8)[..., np.newaxis]
    initial = keras_ae.build(variant, images.shape[1:], **options).get_weights()
    mirrored = distribute.get_strategy("mirrored")  # both logical CPUs
    assert mirrored.num_replicas_in_sync == 2
    args = (variant, options, initial, images, 4, learning_rate)
    one = _train(tf.distribute.OneDeviceStrategy("/cpu:0"), *args)
    two = _train(mirrored, *args)
    moved = max(np.abs(a - b).max() for a, b in zip(one, initial))
    assert moved > 1e-3, "training did not change the weights"
    for a, b in zip(one, two):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _rejecting_empty_batches(strategy, shape):
    """An identity model that fails on an empty batch, on any CPU, as oneDNN's
    convolutions do on Intel CPUs."""
    def check(x):
        tf.debugging.assert_positive(tf.shape(x)[0], "empty batch")
        return x

    with strategy.scope():
        images = keras.Input(shape)
        return keras.Model(images, keras.layers.Lambda(check)(images))


def test_predict_hands_no_replica_an_empty_batch():
    mirrored = distribute.get_strategy("mirrored")
    model = _rejecting_empty_batches(mirrored, (2,))
    # 33 rows at batch 32, and 1 row: a last batch of one row for two replicas.
    for rows in (33, 1):
        x = np.arange(rows * 2, dtype="float32").reshape(rows, 2)
        with pytest.raises(tf.errors.InvalidArgumentError, match="empty batch"):
            model.predict(x, batch_size=32, verbose=0)
        np.testing.assert_array_equal(distribute.predict(model, x, batch_size=32), x)
    # A batch smaller than the replicas is rounded up, and nested outputs are cut too.
    pair = keras.Model(model.inputs, [model.outputs[0], 2 * model.outputs[0]])
    x = np.ones((3, 2), "float32")
    first, second = distribute.predict(pair, x, batch_size=1)
    np.testing.assert_array_equal(second, 2 * first)
    assert len(first) == 3


def test_training_stream_hands_no_replica_an_empty_batch():
    mirrored = distribute.get_strategy("mirrored")
    images = make_images(33, seed=0, height=4, width=4)[..., np.newaxis]

    def local_batch_sizes(smallest_batch):
        stream = data.train_dataset(images, batch_size=8, epochs=2, smallest_batch=smallest_batch)
        return [
            len(local)
            for x, _ in mirrored.experimental_distribute_dataset(stream)
            for local in mirrored.experimental_local_results(x)
        ]

    assert 0 in local_batch_sizes(1)  # what training used to be handed
    assert min(local_batch_sizes(2)) == 4  # the batch of one image is dropped
