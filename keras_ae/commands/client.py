r"""Sends an image to a model served by TensorFlow Serving's REST API.

    keras-ae-client shoe.png --server=http://localhost:8501 \
        --model_name=conv-fashion_mnist --reconstruction=shoe-reconstructed.png

reads the image (PNG, JPEG, ...), converts it to the model's input (grey or
RGB, resized to --image_shape, pixels / 255), POSTs

    {"signature_name": "serving_default", "instances": [{"images": [[[0.0], ...]]}]}

to SERVER/v1/models/MODEL_NAME:predict and prints each image's
reconstruction_error (an anomaly score). --request_only prints the request
body instead of sending it. It needs only numpy and Pillow: TensorFlow is
not loaded.
"""

import json
import sys
import urllib.error
import urllib.request

from absl import app
from absl import flags
import numpy as np
from PIL import Image

FLAGS = flags.FLAGS

flags.DEFINE_string("server", "http://localhost:8501", "TF Serving's REST address.")
flags.DEFINE_string("model_name", None, "The served model's name.")
flags.DEFINE_integer("version", None, "Model version. Default: the server's latest.")
flags.DEFINE_list("image_shape", ["28", "28", "1"], "Height, width, channels (1 or 3).")
flags.DEFINE_string(
    "reconstruction", None, "Write the (first) image's reconstruction to this PNG file."
)
flags.DEFINE_bool("request_only", False, "Print the request body; send nothing.")
flags.DEFINE_float("timeout", 30, "Seconds to wait for the server.")


def read_image(path, height, width, channels):
    """An image file as float32 `[height, width, channels]` in [0, 1]."""
    image = Image.open(path).convert("L" if channels == 1 else "RGB")
    if image.size != (width, height):
        image = image.resize((width, height), Image.Resampling.BILINEAR)
    pixels = np.asarray(image, np.float32) / 255.0
    return pixels.reshape(height, width, channels)


def predict_request(images):
    """The REST :predict body for `serving_default`, row format."""
    return {
        "signature_name": "serving_default",
        "instances": [{"images": image.tolist()} for image in images],
    }


def predict_url(server, model_name, version=None):
    path = f"/v1/models/{model_name}" + (f"/versions/{version}" if version else "")
    return f"{server.rstrip('/')}{path}:predict"


def post(url, body, timeout):
    """POSTs `body` as JSON; returns the decoded answer or exits with the error."""
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.load(response)
    except urllib.error.HTTPError as e:  # TF Serving explains in the body
        sys.exit(f"export.client: error: {url} answered {e.code}: {e.read().decode()[:500]}")
    except urllib.error.URLError as e:
        sys.exit(f"export.client: error: cannot reach {url}: {e.reason}; is the server up?")


def main(argv):
    paths = argv[1:]
    if not paths:
        sys.exit("export.client: error: name at least one image file")
    try:
        height, width, channels = (int(n) for n in FLAGS.image_shape)
        images = [read_image(path, height, width, channels) for path in paths]
    except ValueError as e:
        sys.exit(f"export.client: error: --image_shape: want HEIGHT,WIDTH,CHANNELS ({e})")
    except OSError as e:
        sys.exit(f"export.client: error: cannot read the image: {e}")
    body = predict_request(images)
    if FLAGS.request_only:
        print(json.dumps(body))
        return
    if not FLAGS.model_name:
        sys.exit("export.client: error: --model_name: name the served model")
    answer = post(predict_url(FLAGS.server, FLAGS.model_name, FLAGS.version), body,
                  FLAGS.timeout)
    for path, prediction in zip(paths, answer["predictions"]):
        print(f"{path}: reconstruction_error {prediction['reconstruction_error']:.6f}")
    if FLAGS.reconstruction:
        pixels = np.clip(answer["predictions"][0]["reconstruction"], 0, 1)
        pixels = (255 * pixels).round().astype(np.uint8)
        Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(FLAGS.reconstruction)


def run():
    """The console script's entry point."""
    app.run(main)

