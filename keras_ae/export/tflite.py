"""TFLite for phones: converting one signature, and running it in LiteRT.

Four flavours (`QUANTIZATIONS`), all limited to TFLite's builtin ops (no Flex
ops, which phones' default runtime lacks):

    float32   the float model as it is
    float16   float16 weights (half the size; GPU delegates compute in fp16)
    dynamic   int8 weights, float activations (dynamic-range quantization)
    int8      full integer: int8 weights, activations, input and output,
              calibrated on representative inputs (integer-only accelerators)

Inputs have batch 1 (what a phone feeds) with a dynamic batch signature: the
LiteRT signature runner resizes to any batch it is given.

Example:

    flatbuffer = convert("export/conv/1", "serving_default", "int8",
                         representative={"images": train_images[:500]})
    outputs = run(path, "serving_default", {"images": test_images})
"""

import os
import warnings

from ai_edge_litert import interpreter as litert
import numpy as np
import tensorflow as tf

from keras_ae.choices import QUANTIZATIONS


def convert(saved_model_dir, signature, quantize, representative=None):
    """Converts one signature of a SavedModel to a TFLite flatbuffer (bytes).

    Args:
        saved_model_dir: a SavedModel (e.g. from `saved_model.write`).
        signature: the signature to convert; the TFLite file keeps its name,
            inputs and outputs.
        quantize: one of `QUANTIZATIONS`.
        representative: `{input name: array}` of typical inputs; required for
            "int8", which calibrates its activation ranges on them one by one.
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize={quantize!r} is not one of {', '.join(QUANTIZATIONS)}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=[signature]
    )
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantize == "int8":
        if not representative:
            raise ValueError("int8 quantization needs representative inputs")
        count = len(next(iter(representative.values())))
        converter.representative_dataset = lambda: (
            {name: values[i : i + 1] for name, values in representative.items()}
            for i in range(count)
        )
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
        # Per-tensor, not per-channel, scales for Dense weights: a per-channel
        # scale and int64 zero point for each of the conv decoder's 3136
        # expand units (weights and bias) cost a third of the int8 file for no
        # measurable gain in test MSE.
        converter._experimental_disable_per_channel_quantization_for_dense_layers = True
    with warnings.catch_warnings():
        # Calibration runs TensorFlow's own deprecated tf.lite.Interpreter.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        return converter.convert()


def signature_runner(path, signature, threads=None):
    """The LiteRT signature runner of `signature` in the .tflite file at
    `path`, on `threads` threads (default LiteRT's: one, as a phone's call
    is timed by bench/run.py)."""
    return litert.Interpreter(model_path=path, num_threads=threads).get_signature_runner(
        signature)


def describe(runner):
    """Inputs and outputs of a signature runner as JSON: dtype, shape (batch 1),
    shape_signature (-1 for a dynamic dimension) and, if quantized,
    `[scale, zero_point]`."""

    def details(tensors):
        described = {}
        for name, d in tensors.items():
            described[name] = {
                "dtype": np.dtype(d["dtype"]).name,
                "shape": d["shape"].tolist(),
                "shape_signature": d["shape_signature"].tolist(),
            }
            scale, zero_point = d["quantization"]
            if scale:
                described[name]["quantization"] = [float(scale), int(zero_point)]
        return described

    return {"inputs": details(runner.get_input_details()),
            "outputs": details(runner.get_output_details())}


def run(path, signature, inputs, batch_size=256):
    """Runs a signature of a .tflite file in LiteRT on float inputs, in batches.

    Quantized inputs and outputs are converted with the tensors' own scale and
    zero point, so int8 models take and return float arrays here like the rest.

    Args:
        path: a .tflite file.
        signature: the signature name.
        inputs: `{input name: float array}`, all with the same batch size.
        batch_size: images per call (the runner resizes its input to it);
            one, if the file takes a batch of one alone.

    Returns:
        `{output name: float32 array}`.
    """
    runner = signature_runner(path, signature, threads=os.cpu_count())
    check_inputs(runner, inputs)
    input_details = runner.get_input_details()
    output_details = runner.get_output_details()
    if all(d["shape_signature"][0] == 1 for d in input_details.values()):
        batch_size = 1
    count = len(next(iter(inputs.values())))
    batches = []
    for start in range(0, count, batch_size):
        feed = {
            name: quantize(values[start : start + batch_size], input_details[name])
            for name, values in inputs.items()
        }
        outputs = runner(**feed)
        batches.append({n: dequantize(v, output_details[n]) for n, v in outputs.items()})
    return {name: np.concatenate([b[name] for b in batches]) for name in batches[0]}


def check_inputs(runner, inputs):
    """Raises ValueError, naming the input and what it should be, unless
    `inputs` (`{name: float array}`) fit the signature runner.

    LiteRT itself reports a wrong shape as "XNNPack delegate failed to reshape
    runtime", and takes uint8 pixels 0..255 once cast, as if they were 0..1.
    """
    details = runner.get_input_details()
    if set(inputs) != set(details):
        raise ValueError(f"inputs {sorted(inputs)} given; this signature takes {sorted(details)}")
    for name, values in inputs.items():
        values = np.asarray(values)
        expected = details[name]["shape_signature"].tolist()
        expected[0] = -1  # any count: `run` feeds a file of batch one image by image
        wanted = "[" + ", ".join("batch" if d == -1 else str(d) for d in expected) + "]"
        if values.ndim != len(expected) or any(
            d not in (-1, given) for d, given in zip(expected, values.shape)
        ):
            raise ValueError(
                f"input {name!r} has shape {list(values.shape)}; this signature takes {wanted}"
            )
        if not np.issubdtype(values.dtype, np.floating):
            raise ValueError(
                f"input {name!r} has dtype {values.dtype}; pass floats (images in [0, 1]: "
                "divide uint8 pixels by 255)"
            )


def quantize(values, details):
    """Float `values` as the input tensor `details` (from a signature runner)
    takes them: unchanged for float inputs, scaled to int8 for quantized ones."""
    if details["dtype"] != np.int8:
        return np.asarray(values, details["dtype"])
    scale, zero_point = details["quantization"]
    return np.clip(np.round(values / scale + zero_point), -128, 127).astype(np.int8)


def dequantize(values, details):
    """An output tensor's `values` as float32, whatever its type."""
    if details["dtype"] != np.int8:
        return np.array(values, np.float32)  # a copy: the runner reuses its buffers
    scale, zero_point = details["quantization"]
    return ((values.astype(np.float32) - zero_point) * scale).astype(np.float32)
