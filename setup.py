"""keras-ae: train autoencoders with Keras and ship them to servers and phones."""

import setuptools

setuptools.setup(
    name="keras-ae",
    version="0.1.0",
    description="Autoencoders in Keras 3 / TensorFlow: tf.data input, tf.distribute "
    "training, SavedModel and TFLite export.",
    # Only keras_ae: train.py and export/ are a checkout's shims for the
    # console scripts below.
    packages=setuptools.find_packages(include=["keras_ae", "keras_ae.*"]),
    entry_points={
        "console_scripts": [
            "keras-ae-train=keras_ae.commands.train:run",
            "keras-ae-export=keras_ae.commands.export:run",
            "keras-ae-client=keras_ae.commands.client:run",
        ],
    },
    python_requires=">=3.10",
    install_requires=[
        # The tested range: keras_ae/keras_fixes.py works around Keras 3.15 bugs
        # through private APIs, checked against these minor versions only.
        "tensorflow>=2.21,<2.22",
        "keras>=3.15,<3.16",
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
        # keras-ae-client reads image files (matplotlib depends on it already).
        "pillow>=10",
    ],
    extras_require={
        # hypothesis: the property-based test feeding random and damaged bytes
        # to every data file reader (tests/test_data.py). pytest-xdist: the
        # suite in two processes, a file's tests in one (-n 2 --dist loadfile,
        # so its module fixtures are built once; BUILD.md, "Tests"); 3.8 lets
        # tests/conftest.py keep the longest files first.
        "test": ["pytest>=8", "hypothesis>=6", "pytest-xdist>=3.8"],
    },
)
