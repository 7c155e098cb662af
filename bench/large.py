"""Camera-sized images: a 1024x1024 RGB folder in MVTec AD's layout, trained with the defaults.

    python bench/large.py [--size=1024] [--texture=brick] [--train=60]

Builds the folder from a scikit-image texture photograph (as
bench/textures.py reads it): each image a --source px crop of the photograph
(training crops clear of its bottom-right quarter, test crops inside it),
enlarged to --size px as a camera closer to the part would see it, tinted to
RGB, and the test ones given bench/textures.py's defects drawn at the full
resolution (scratches 1-2 px wide, discs of 2-8 px). Then runs, as a user
would, in fresh processes:

    python train.py --dataset=folder --data_dir=FOLDER/train --test_dir=FOLDER/test \\
        --normal_classes=good --model_dir=FOLDER/run
    python -m export --model_dir=FOLDER/run --export_base=FOLDER/export --model_name=large

and serves one defective test image's PNG through the SavedModel's
`serving_bytes`, checking that its map has the image's size, and times one
image's request there and in LiteRT (`served_map`). Records each
process's peak resident memory (`ru_maxrss`), seconds and exit code, the
run's metrics (image and pixel AUROC, PRO), and the machine, in --out.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

from keras_ae import commands  # noqa: E402,F401  first: TensorFlow's environment, as train.py's

from absl import app
from absl import flags
import numpy as np
from PIL import Image

import environment  # bench/environment.py, beside this file
import textures  # bench/textures.py: the photographs and the defects

FLAGS = flags.FLAGS
TINT = (1.0, 0.8, 0.65)  # the grey photograph's channels scaled: a reddish brick
SERVING_REPEATS = 5


def define_flags():
    flags.DEFINE_integer("size", 1024, "Side of the images (pixels).")
    flags.DEFINE_integer("source", 256, "Side of the photograph's crop each image enlarges.")
    flags.DEFINE_string("texture", "brick", "The photograph.")
    flags.DEFINE_integer("train", 60, "Normal training images.")
    flags.DEFINE_integer("good", 10, "Good test images.")
    flags.DEFINE_integer("per_defect", 5, "Test images of each defect.")
    flags.DEFINE_integer("seed", 0, "Seed of the crops and defects.")
    flags.DEFINE_list("train_flags", [], "More train.py flags, e.g. --epochs=1 for a quick look.")
    flags.DEFINE_string("root", os.path.join(tempfile.gettempdir(), "large-bench"),
                        "Where the folder, the run and the export go.")
    flags.DEFINE_string("out", "bench/large.json", "Where to write the results.")
    flags.DEFINE_bool("export_only", False, "Export and serve the run --out recorded again, "
                      "keeping its training entry (after a change to the export alone).")


def _tinted(grey):
    """The grey photograph's pixels as RGB, scaled by TINT."""
    return grey[..., None] * np.array(TINT, np.float32)


def _enlarged(crop, size):
    image = Image.fromarray(np.round(crop * 255).astype(np.uint8))
    return np.asarray(image.resize((size, size), Image.BICUBIC), np.float32) / 255


def write_layout(directory):
    """The folder (module docstring), unless a previous call finished it."""
    if os.path.exists(os.path.join(directory, "complete")):
        return
    rng = np.random.default_rng(FLAGS.seed)
    photos = textures.photographs(os.path.join(FLAGS.root, "photos"), textures.TEXTURES)
    photo, others = photos[FLAGS.texture], [p for n, p in photos.items() if n != FLAGS.texture]
    others = [_enlarged(p[:FLAGS.source, :FLAGS.source], FLAGS.size) for p in others]
    for i, crop in enumerate(textures.crops(photo, FLAGS.train, FLAGS.source, rng,
                                            held_out=False)):
        textures.save(os.path.join(directory, "train", "good", f"{i:03d}.png"),
                      _tinted(_enlarged(crop, FLAGS.size)))
    test = textures.crops(photo, FLAGS.good + FLAGS.per_defect * len(textures.DEFECTS),
                          FLAGS.source, rng, held_out=True)
    for i, crop in enumerate(test[:FLAGS.good]):
        textures.save(os.path.join(directory, "test", "good", f"{i:03d}.png"),
                      _tinted(_enlarged(crop, FLAGS.size)))
    for k, kind in enumerate(textures.DEFECTS):
        for i, crop in enumerate(test[FLAGS.good + k * FLAGS.per_defect:][:FLAGS.per_defect]):
            image, mask = textures.defective(_enlarged(crop, FLAGS.size), kind, rng, others)
            textures.save(os.path.join(directory, "test", kind, f"{i:03d}.png"), _tinted(image))
            textures.save(os.path.join(directory, "ground_truth", kind, f"{i:03d}_mask.png"),
                          mask.astype(np.float32))
    open(os.path.join(directory, "complete"), "w").close()


# Runs a command and writes its peak resident memory (KiB) to a file. A process
# exec'd from a fork of this one starts its peak at this one's size (Linux keeps
# the forked memory's high-water mark across exec), so this small one forks it.
_PEAK_OF = ("import resource, subprocess, sys; code = subprocess.call(sys.argv[2:]); "
            "open(sys.argv[1], 'w').write(str(resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss)); sys.exit(code)")


def timed(command, cwd=None):
    """Runs `command`; its exit code, seconds and own peak resident memory (MiB)."""
    with tempfile.TemporaryDirectory() as scratch:
        peak_file = os.path.join(scratch, "peak")
        start = time.perf_counter()
        code = subprocess.run([sys.executable, "-c", _PEAK_OF, peak_file, *command],
                              cwd=cwd).returncode
        seconds = time.perf_counter() - start
        with open(peak_file) as f:
            peak = int(f.read()) / 1024
    return {"command": " ".join(command), "exit_code": code, "seconds": seconds,
            "peak_memory_mib": peak}


def served_map(export_dir, image_file):
    """`(outputs, seconds)`: the SavedModel's (in `export_dir`) `serving_bytes`
    outputs for one PNG file, and the median seconds of SERVING_REPEATS
    requests of that one image after a first (which builds the graph): its
    `serving_bytes`, and the float32, dynamic-range and (if written) int8
    `reconstruct` TFLite files in LiteRT (a thread per core) on the decoded
    image."""
    import tensorflow as tf  # only here: the runs above are processes of their own
    from keras_ae.export import tflite
    serve = tf.saved_model.load(export_dir).signatures["serving_bytes"]
    with open(image_file, "rb") as f:
        request = tf.constant([f.read()])
    outputs = {name: value.numpy() for name, value in serve(image_bytes=request).items()}
    image = tf.io.decode_png(request[0], channels=3)[None].numpy().astype(np.float32) / 255
    calls = {"serving_bytes": lambda: serve(image_bytes=request)}
    for kind in ("float32", "dynamic", "int8"):
        path = os.path.join(export_dir, "tflite", f"reconstruct_{kind}.tflite")
        if not os.path.exists(path):
            continue
        runner = tflite.signature_runner(path, "serving_default", threads=os.cpu_count())
        pixels = tflite.quantize(image, runner.get_input_details()["images"])
        calls[f"tflite_{kind}"] = lambda runner=runner, pixels=pixels: runner(images=pixels)
    seconds = {}
    for name, call in calls.items():
        call()
        seconds[name] = float(np.median([_seconds(call) for _ in range(SERVING_REPEATS)]))
    return outputs, seconds


def _seconds(call):
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def reconstruct_bytes(export_dir):
    """`{flavour: bytes}` of the export's `reconstruct` TFLite files."""
    directory = os.path.join(export_dir, "large", "1", "tflite")
    return {name[len("reconstruct_"):-len(".tflite")]:
            os.path.getsize(os.path.join(directory, name))
            for name in sorted(os.listdir(directory)) if name.startswith("reconstruct_")}


def main(argv):
    del argv  # environment.command() records the flags
    directory = os.path.join(FLAGS.root, f"{FLAGS.texture}-{FLAGS.size}")
    write_layout(directory)
    run_dir, export_dir = os.path.join(directory, "run"), os.path.join(directory, "export")
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if FLAGS.export_only:  # the recorded training, then this command's export
        results = json.load(open(FLAGS.out))
        results["export_command"] = environment.command()
        results["export_machine"] = environment.machine()
    else:
        train = timed([sys.executable, os.path.join(here, "train.py"), "--dataset=folder",
                       f"--data_dir={directory}/train", f"--test_dir={directory}/test",
                       "--normal_classes=good", f"--model_dir={run_dir}", "--overwrite",
                       *FLAGS.train_flags])
        results = {"command": environment.command(), "machine": environment.machine(),
                   "size": FLAGS.size, "train_images": FLAGS.train, "train": train}
    if results["train"]["exit_code"] == 0:
        results["export"] = timed([sys.executable, "-m", "export", f"--model_dir={run_dir}",
                                   f"--export_base={export_dir}", "--model_name=large",
                                   "--version=1", "--overwrite"], cwd=here)
        metrics = json.load(open(os.path.join(run_dir, "metrics.json")))
        config = json.load(open(os.path.join(run_dir, "config.json")))
        results["run"] = {
            "variant": config["model"]["variant"], "tile": config["model"].get("tile"),
            "batch_size": config["data"]["batch_size"], "epochs": config["train"]["epochs"],
            **{k: metrics.get(k) for k in ("test_auroc", "test_pixel_auroc", "test_pro",
                                           "train_seconds", "peak_memory_mib",
                                           "evaluation_peak_memory_mib", "parameters")}}
    if results.get("export", {}).get("exit_code") == 0:
        image = os.path.join(directory, "test", "small", "000.png")
        outputs, seconds = served_map(os.path.join(export_dir, "large", "1"), image)
        mask = np.asarray(Image.open(os.path.join(directory, "ground_truth", "small",
                                                  "000_mask.png"))) > 127
        anomaly_map = outputs["anomaly_map"][0]
        results["served"] = {"image": image, "anomaly_map_shape": list(anomaly_map.shape),
                             "anomaly_score": float(outputs["anomaly_score"][0]),
                             "map_peak_inside_mask": bool(mask.flat[anomaly_map.argmax()]),
                             "seconds_per_image": seconds, "serving_repeats": SERVING_REPEATS,
                             "reconstruct_bytes": reconstruct_bytes(export_dir)}
    print(json.dumps(results, indent=1))
    with open(FLAGS.out, "w") as f:
        json.dump(results, f, indent=1)


if __name__ == "__main__":
    define_flags()
    app.run(main)
