r"""Sends image files to a model served by TensorFlow Serving's REST API.

    keras-ae-client shoe.png --server=http://localhost:8501 \
        --model_name=conv-fashion_mnist --reconstruction=shoe-reconstructed.png

POSTs each file's own bytes (PNG, JPEG, BMP, GIF, any size), base64-encoded, to
the model's `serving_bytes` signature, which decodes and resizes them as
training did:

    {"signature_name": "serving_bytes", "instances": [{"b64": "iVBORw0KGgo..."}]}

to SERVER/v1/models/MODEL_NAME:predict and prints each image's
reconstruction_error, and for an anomaly detector (`--normal_classes`) its
anomaly_score, normalized_score and decision; `--anomaly_maps=DIR` writes each
file's anomaly map there as DIR/<name>_map.png, grey 128 at the threshold.
--request_only prints the request body instead of sending it. It needs only
numpy and Pillow: TensorFlow is not loaded.
"""

import base64
import json
import os
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
flags.DEFINE_string(
    "reconstruction", None, "Write the (first) image's reconstruction to this PNG file."
)
flags.DEFINE_string(
    "anomaly_maps", None,
    "A detector: write each file's anomaly map to this folder as <name>_map.png, scaled as "
    "normalized_score is (grey 128: the threshold; white: twice it).",
)
flags.DEFINE_bool("request_only", False, "Print the request body; send nothing.")
flags.DEFINE_float("timeout", 30, "Seconds to wait for the server.")


def predict_request(encoded_files):
    """The REST :predict body for `serving_bytes`: one base64 string per file
    (TF Serving's row format; a signature with one input takes bare values)."""
    return {
        "signature_name": "serving_bytes",
        "instances": [{"b64": base64.b64encode(data).decode("ascii")}
                      for data in encoded_files],
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
        encoded_files = []
        for path in paths:
            with open(path, "rb") as f:
                encoded_files.append(f.read())
    except OSError as e:
        sys.exit(f"export.client: error: cannot read the image: {e}")
    body = predict_request(encoded_files)
    if FLAGS.request_only:
        print(json.dumps(body))
        return
    if not FLAGS.model_name:
        sys.exit("export.client: error: --model_name: name the served model")
    answer = post(predict_url(FLAGS.server, FLAGS.model_name, FLAGS.version), body,
                  FLAGS.timeout)
    for path, prediction in zip(paths, answer["predictions"]):
        line = f"{path}: reconstruction_error {prediction['reconstruction_error']:.6f}"
        if "is_anomaly" in prediction:  # a detector
            line += (f", anomaly_score {prediction['anomaly_score']:.6f} (normalized "
                     f"{prediction['normalized_score']:.3f}): "
                     + ("anomaly" if prediction["is_anomaly"] else "normal"))
        print(line)
    if FLAGS.anomaly_maps:
        os.makedirs(FLAGS.anomaly_maps, exist_ok=True)
        for path, prediction in zip(paths, answer["predictions"]):
            if "anomaly_map" not in prediction:
                sys.exit("export.client: error: --anomaly_maps: the model serves no anomaly_map "
                         "(train it with --normal_classes)")
            name = os.path.splitext(os.path.basename(path))[0] + "_map.png"
            Image.fromarray(map_pixels(prediction)).save(os.path.join(FLAGS.anomaly_maps, name))
    if FLAGS.reconstruction:
        pixels = np.clip(answer["predictions"][0]["reconstruction"], 0, 1)
        pixels = (255 * np.asarray(pixels)).round().astype(np.uint8)
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
            FLAGS.reconstruction)


def map_pixels(prediction):
    """uint8 `[height, width]`: a prediction's anomaly_map as normalized_score
    scales the score (0.5 at the threshold), times 255, clipped."""
    threshold = 0.5 * prediction["anomaly_score"] / prediction["normalized_score"]
    normalized = 0.5 * np.asarray(prediction["anomaly_map"]) / threshold
    return np.round(255 * np.clip(normalized, 0, 1)).astype(np.uint8)


def run():
    """The console script's entry point."""
    app.run(main)

