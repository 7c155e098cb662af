"""keras-ae: train autoencoders with Keras and ship them to servers and phones."""

import setuptools

setuptools.setup(
    name="keras-ae",
    version="0.1.0",
    description="Autoencoders in Keras 3 / TensorFlow: tf.data input, tf.distribute "
    "training, SavedModel and TFLite export.",
    packages=setuptools.find_packages(include=["keras_ae", "keras_ae.*", "export"]),
    py_modules=["train"],
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.21",
        "keras>=3.15",
        "tensorflow-datasets>=4.9",
        # tensorflow-datasets 4.9 imports it when downloading but declares it only
        # for Python < 3.9; without it every TFDS download fails on 3.10+.
        "importlib_resources>=6",
        # The Keras TensorBoard callback needs it since TensorFlow 2.21 stopped
        # depending on it.
        "tensorboard>=2.21",
        "numpy>=1.26",
        "matplotlib>=3.8",
        "absl-py>=2.1",
        # The LiteRT interpreter: every exported .tflite file is run in it
        # before the export is published.
        "ai-edge-litert>=2.3",
        # export/client.py reads image files (matplotlib depends on it already).
        "pillow>=10",
    ],
    extras_require={
        # hypothesis: the property-based test feeding random and damaged bytes
        # to every data file reader (tests/test_data.py).
        "test": ["pytest>=8", "hypothesis>=6"],
    },
)
