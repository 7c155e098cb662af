"""The standard battery every variant's tests inherit (after KerasHub's TestCase).

A variant's test file subclasses `AutoencoderTestCase`, sets `variant`,
`input_shape` and `options`, and adds only what is special to it. Each class
trains one model (`trained`) and writes one SavedModel (`exported`), which its
tests share; the SavedModels of all classes are checked in one fresh process.
"""

import inspect
import os
import re
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_ae
from keras_ae.export import saved_model
from keras_ae.export import signatures
from keras_ae.export import tflite


def assert_loss_is_mse_plus(model, x, penalty):
    """Checks the compiled model's loss on `x` is the MSE plus `penalty(model, x)`,
    both computed here independently of the model's loss code."""
    loss = model.evaluate(x, x, verbose=0, return_dict=True)["loss"]
    mse = np.mean((model.predict(x, verbose=0) - x) ** 2)
    np.testing.assert_allclose(loss, mse + penalty(model, x), rtol=1e-4)


def saved_model_cli(path):
    """`saved_model_cli show --all` of a SavedModel, parsed.

    Returns `(signatures, ops)`: `{signature: {"inputs"|"outputs": {name:
    (dtype, shape)}}}` as the tool prints them (shape a string like
    "-1, 28, 28, 1"), and the set of op types in the MetaGraph.
    """
    tool = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    text = subprocess.run(
        [tool, "show", "--all", "--dir", path], capture_output=True, text=True, check=True,
        timeout=300,
    ).stdout
    listing = {}
    for block in text.split("\nsignature_def['")[1:]:
        name = block[: block.index("'")]
        listing[name] = {"inputs": {}, "outputs": {}}
        for kind, tensor, dtype, shape in re.findall(
            r"(inputs|outputs)\['(\w+)'\] tensor_info:\s+dtype: (\w+)\s+shape: \(([-\d, ]*)\)",
            block,
        ):
            listing[name][kind][tensor] = (dtype, shape)
    ops = set(re.findall(r"'(\w+)'", text.split("contains the following ops:")[1]))
    return listing, ops


# Per battery class: (model, images, losses) once trained, and its SavedModel's path.
_TRAINED, _EXPORTED = {}, {}


def run_all_fresh(classes, tmp_path_factory):
    """The SavedModels of battery `classes`, loaded and run in one fresh process
    (one TensorFlow start, not one per class): `{class: (outputs, listing)}`."""
    jobs = []
    for cls in classes:
        case = cls()
        model, x, _ = case.train_once()
        jobs.append((case.export_once(tmp_path_factory), signatures.inputs(model, x)))
    return dict(zip(classes, saved_model.run_all_in_fresh_process(jobs)))


def spec(*shape):
    """A float32 tensor's description in an export listing."""
    return {"dtype": "float32", "shape": list(shape)}


class AutoencoderTestCase:
    variant = None
    input_shape = (8, 8, 1)
    options = {"latent_dim": 2}
    code_names = ["latent"]  # the encode signature's outputs

    def build(self):
        keras.utils.set_random_seed(0)  # the same initial weights every run
        return keras_ae.build(self.variant, self.input_shape, **self.options)

    def images(self, count=16, seed=0):
        """Mixtures of two fixed patterns: compressible into a latent of 2."""
        rng = np.random.default_rng(seed)
        patterns = rng.random((2, int(np.prod(self.input_shape))))
        mixtures = rng.random((count, 2)) @ patterns / 2
        return mixtures.reshape(count, *self.input_shape).astype(np.float32)

    def test_build_and_call(self):
        model = self.build()
        x = self.images()
        y = model.predict(x, verbose=0)
        assert y.shape == x.shape
        assert np.all((y >= 0) & (y <= 1)), "reconstructions are not in [0, 1]"
        latent = model.encode(x)  # the deterministic code (z_mean for the VAE)
        assert latent.shape == (len(x), *model.decoder.input_shape[1:])
        # At inference the autoencoder is exactly decoder(code(x)).
        np.testing.assert_allclose(
            model.decoder.predict(latent, verbose=0), y, rtol=1e-5, atol=1e-6
        )
        assert model.encoder.name == "encoder" and model.decoder.name == "decoder"
        assert [t.name for t in model.encoder.inputs] == ["images"]
        assert [t.name for t in model.decoder.inputs] == ["latent"]

    def loss_floor(self, x):
        """The least value the loss can take on `x` (0 for squared error)."""
        return 0.0

    def train_once(self):
        """This class's model fitted for 60 steps, its images and its losses."""
        if type(self) not in _TRAINED:
            model = self.build()
            model.compile(optimizer=keras.optimizers.Adam(1e-2))
            x = self.images()
            history = model.fit(x, x, epochs=30, batch_size=8, verbose=0)
            _TRAINED[type(self)] = model, x, history.history["loss"]
        return _TRAINED[type(self)]

    def export_once(self, tmp_path_factory):
        """The trained model's SavedModel: its path."""
        if type(self) not in _EXPORTED:
            path = str(tmp_path_factory.mktemp(self.variant) / "saved_model")
            saved_model.write(self.train_once()[0], path)
            _EXPORTED[type(self)] = path
        return _EXPORTED[type(self)]

    @pytest.fixture
    def trained(self):
        return self.train_once()

    @pytest.fixture
    def exported(self, tmp_path_factory):
        return self.export_once(tmp_path_factory)

    def test_fit_reduces_loss(self, trained):
        model, x, losses = trained
        excess = np.array(losses) - self.loss_floor(x)
        assert excess[-1] < 0.5 * excess[0], excess

    def test_get_config_is_the_constructor_arguments(self):
        model = self.build()
        config = model.get_config()
        parameters = inspect.signature(type(model).__init__).parameters
        arguments = {n for n in parameters if n not in ("self", "kwargs")}
        assert set(config) == arguments | {"name", "trainable"}
        clone = type(model).from_config(config)
        assert clone.get_config() == config
        assert clone.count_params() == model.count_params()

    def test_keras_save_and_reload(self, trained, tmp_path):
        model, x, _ = trained
        path = str(tmp_path / "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
        assert type(reloaded) is type(model)
        # Compiled as saved, optimizer state included, so training can go on.
        assert type(reloaded.optimizer) is type(model.optimizer)
        assert float(reloaded.optimizer.learning_rate) == float(model.optimizer.learning_rate)
        assert int(reloaded.optimizer.iterations) == int(model.optimizer.iterations) == 60
        np.testing.assert_array_equal(
            reloaded.predict(x, verbose=0), model.predict(x, verbose=0)
        )
        np.testing.assert_array_equal(reloaded.encode(x), model.encode(x))

    def expected_outputs(self, model, x):
        """What each exported signature must return, from the Keras model."""
        reconstruction = model.predict(x, verbose=0)
        codes = model.encoder.predict(x, verbose=0)
        codes = codes if isinstance(codes, list) else [codes]
        return {
            "serving_default": {
                "reconstruction": reconstruction,
                "reconstruction_error": np.mean((reconstruction - x) ** 2, axis=(1, 2, 3)),
            },
            "encode": dict(zip(self.code_names, codes)),
            "decode": {"images": model.decoder.predict(codes[0], verbose=0)},
        }

    def expected_bytes_outputs(self, model, x):
        """`serving_bytes` on x as PNG files: x rounded to 8 bits, reconstructed."""
        decoded = np.round(x * 255) / np.float32(255)
        return self.expected_outputs(model, decoded)["serving_default"]

    @pytest.mark.slow
    def test_saved_model_in_a_fresh_process_matches_keras(self, trained, fresh_process_runs):
        model, x, _ = trained
        outputs, listing = fresh_process_runs[type(self)]
        images, latent = spec(-1, *self.input_shape), spec(-1, *model.decoder.input_shape[1:])
        code_shapes = model.encoder.output_shape
        code_shapes = code_shapes if isinstance(code_shapes, list) else [code_shapes]
        assert listing == {
            "serving_default": {
                "inputs": {"images": images},
                "outputs": {"reconstruction": images, "reconstruction_error": spec(-1)},
            },
            "encode": {"inputs": {"images": images},
                       "outputs": {name: spec(-1, *shape[1:]) for name, shape
                                   in zip(self.code_names, code_shapes)}},
            "decode": {"inputs": {"latent": latent}, "outputs": {"images": images}},
            "serving_bytes": {
                "inputs": {"image_bytes": {"dtype": "string", "shape": [-1]}},
                "outputs": {"reconstruction": images, "reconstruction_error": spec(-1)},
            },
        }
        expected = {**self.expected_outputs(model, x),
                    "serving_bytes": self.expected_bytes_outputs(model, x)}
        for signature, named in expected.items():
            for name, value in named.items():
                np.testing.assert_allclose(
                    outputs[signature][name], value, rtol=1e-5, atol=1e-6,
                    err_msg=f"{signature}/{name}",
                )

    @pytest.mark.slow
    def test_tflite_runs_in_litert_like_keras(self, trained, exported, tmp_path):
        model, x, _ = trained
        path = exported
        inputs = signatures.inputs(model, x)
        expected = self.expected_outputs(model, x)
        for signature in signatures.NAMES:
            file = str(tmp_path / f"{signature}.tflite")
            with open(file, "wb") as f:
                f.write(tflite.convert(path, signature, "float32"))
            (details,) = tflite.signature_runner(file, signature).get_input_details().values()
            # Batch 1 by default, resizable.
            assert details["shape"][0] == 1 and details["shape_signature"][0] == -1
            batched = tflite.run(file, signature, inputs[signature])
            one_by_one = tflite.run(file, signature, inputs[signature], batch_size=1)
            for name, value in expected[signature].items():
                np.testing.assert_allclose(batched[name], value, rtol=1e-5, atol=1e-5,
                                           err_msg=f"{signature}/{name}")
                np.testing.assert_allclose(one_by_one[name], batched[name], rtol=1e-5,
                                           atol=1e-6, err_msg=f"{signature}/{name}")

        # float16 and dynamic-range weights: float in and out, close to Keras.
        # (Sizes: test_export, on a full-size model; these tiny ones can grow.)
        for quantize in ("float16", "dynamic"):
            file = str(tmp_path / f"{quantize}.tflite")
            with open(file, "wb") as f:
                f.write(tflite.convert(path, "serving_default", quantize))
            output = tflite.run(file, "serving_default", inputs["serving_default"])
            error = np.abs(output["reconstruction"]
                           - expected["serving_default"]["reconstruction"])
            assert error.mean() < 0.01, (quantize, error.mean())

        # Full integer: int8 in and out, close to the float model.
        file = str(tmp_path / "int8.tflite")
        with open(file, "wb") as f:
            f.write(tflite.convert(path, "serving_default", "int8", inputs["serving_default"]))
        runner = tflite.signature_runner(file, "serving_default")
        assert runner.get_input_details()["images"]["dtype"] == np.int8
        assert runner.get_output_details()["reconstruction"]["dtype"] == np.int8
        quantized = tflite.run(file, "serving_default", inputs["serving_default"])
        error = np.abs(quantized["reconstruction"] - expected["serving_default"]["reconstruction"])
        assert error.mean() < 0.02, error.mean()

    @pytest.mark.slow
    def test_mixed_bfloat16_trains_and_keeps_code_and_output_float32(self):
        with keras_ae.models.dtype_policy("mixed_bfloat16"):
            model = self.build()
        assert keras.config.dtype_policy().name == "float32", "policy not restored"
        model.compile(optimizer=keras.optimizers.Adam(1e-2))
        x = self.images()
        loss = model.fit(x, x, epochs=10, batch_size=8, verbose=0).history["loss"]
        assert np.all(np.isfinite(loss)) and loss[-1] < loss[0], loss
        reconstruction, code = model.predict(x, verbose=0), model.encode(x)
        for output in (reconstruction, code):
            assert output.dtype == np.float32 and np.all(np.isfinite(output))
        # Every layer with weights computes in bfloat16 but the heads and outputs.
        layers = [l for l in model.encoder.layers + model.decoder.layers if l.weights]
        float32 = {l.name for l in layers if l.compute_dtype == "float32"}
        names = {l.name for l in layers}
        output = "pixels" if "pixels" in names else "reconstruction"  # dense or conv
        assert float32 == {*self.code_names, output}, float32
        assert all(l.compute_dtype == "bfloat16" for l in layers if l.name not in float32)
        assert all(v.dtype == "float32" for v in model.weights if v.dtype != "int64")
