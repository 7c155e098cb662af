"""Each variant against the same model without its ingredient, on Fashion-MNIST.

    python bench/variants.py [--epochs=3] [--train_examples=20000] [--out=bench/variants.json]

Runs `train.py` once per row below (default strategy, seed 0, the local Debian
copy of Fashion-MNIST), then prints a Markdown table (`bench/report.py`) of test_mse and each
variant's own figure of merit, and writes every run's metrics as JSON. The
runs' model directories are kept under --runs_dir for their figures.
"""

import json
import os
import subprocess
import sys

from absl import app
from absl import flags

import environment  # bench/environment.py, beside this file
import report  # bench/report.py

_EPOCHS = flags.DEFINE_integer("epochs", 3, "Epochs per run.")
_TRAIN_EXAMPLES = flags.DEFINE_integer("train_examples", 20000, "Training examples.")
_RUNS_DIR = flags.DEFINE_string("runs_dir", "runs/variants", "Where runs are written.")
_OUT = flags.DEFINE_string("out", "bench/variants.json", "JSON results file.")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (row name, train.py flags, the figures of merit to show)
ROWS = [
    ("denoising", ["--variant=denoising"], ["test_psnr_noisy", "test_psnr_denoised"]),
    ("denoising, trained without noise",
     ["--variant=denoising", "--noise_stddev=0", "--eval_noise_stddev=0.5"],
     ["test_psnr_noisy", "test_psnr_denoised"]),
    ("vae", ["--variant=vae"], ["test_neg_elbo", "test_reconstruction_nll", "test_kl"]),
    ("vae, beta=0 (no KL)", ["--variant=vae", "--beta=0"],
     ["test_neg_elbo", "test_reconstruction_nll", "test_kl"]),
    ("vae, latent 2", ["--variant=vae", "--latent_dim=2"],
     ["test_neg_elbo", "test_reconstruction_nll", "test_kl"]),
    ("sparse l1", ["--variant=sparse"], ["mean_code_activation", "fraction_code_near_zero"]),
    ("sparse l1, weight 0", ["--variant=sparse", "--sparsity_weight=0"],
     ["mean_code_activation", "fraction_code_near_zero"]),
    ("sparse kl", ["--variant=sparse", "--sparsity=kl"],
     ["mean_code_activation", "fraction_code_near_zero"]),
    ("sparse kl, weight 0", ["--variant=sparse", "--sparsity=kl", "--sparsity_weight=0"],
     ["mean_code_activation", "fraction_code_near_zero"]),
    ("contractive", ["--variant=contractive"], ["mean_jacobian_frobenius"]),
    ("contractive, weight 0", ["--variant=contractive", "--contractive_weight=0"],
     ["mean_jacobian_frobenius"]),
]


def main(argv):
    del argv  # environment.command() records the flags
    results = []
    for name, row_flags, figures in ROWS:
        model_dir = os.path.join(_RUNS_DIR.value, name.replace(" ", "").replace(",", "_"))
        command = [
            sys.executable, os.path.join(ROOT, "train.py"), *row_flags,
            "--dataset=fashion_mnist", "--nodownload", f"--epochs={_EPOCHS.value}",
            f"--train_examples={_TRAIN_EXAMPLES.value}", f"--model_dir={model_dir}",
            "--overwrite",  # a fresh run every time, never a resumed or refused one
        ]
        print("running:", " ".join(command[1:]), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        with open(os.path.join(model_dir, "metrics.json")) as f:
            metrics = json.load(f)
        results.append({"name": name, "flags": row_flags, "figures": figures,
                        "metrics": metrics})
    everything = {"command": environment.command(),
                  "machine": environment.machine(), "epochs": _EPOCHS.value,
                  "train_examples": _TRAIN_EXAMPLES.value, "runs": results}
    with open(_OUT.value, "w") as f:
        json.dump(everything, f, indent=2)
    print(report.variants(everything))


if __name__ == "__main__":
    app.run(main)
