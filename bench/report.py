"""Renders the measured tables of README.md and BUILD.md from the results files.

    python bench/report.py           # rewrites every marked block
    python bench/report.py --check   # exits 1, naming them, if any block is stale

A block is the text between `<!-- report:NAME -->` and `<!-- /report:NAME -->`;
NAME is one of `BLOCKS`, each a results file that a bench command wrote (with
the machine, its CPU, the versions and, since they were recorded, the commit)
and a function that turns it into Markdown, ending with where it came from.
Nothing here measures or imports TensorFlow; running it twice changes nothing.
"""

import json
import os
import re
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCUMENTS = ("README.md", "BUILD.md")

NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
         "Bag", "Ankle boot"]
# Mean AUROC (%) over the ten classes, Fashion-MNIST, one class normal, the
# test set whole: Golan & El-Yaniv, "Deep Anomaly Detection Using Geometric
# Transformations", NeurIPS 2018, Table 1, and Bergman & Hoshen (GOAD), ICLR
# 2020. CAE-OC-SVM: a one-class SVM on a convolutional autoencoder's code, its
# hyperparameters tuned on the test set.
PUBLISHED = {"GOAD": 94.1, "RAW-OC-SVM": 92.8, "CAE-OC-SVM": 91.7, "Deep SVDD": 89.2,
             "DSEBM": 86.6, "ADGAN": 88.4}
# Per class, the same protocol: ARNet (Huang et al., "Attribute Restoration
# Framework for Anomaly Detection", IEEE TMM 2022) and GEOM (Golan &
# El-Yaniv, NeurIPS 2018, Table 1).
PUBLISHED_PER_CLASS = {
    "ARNet": (92.7, 99.3, 89.1, 93.6, 90.8, 93.1, 85.0, 98.4, 97.8, 98.4),
    "GEOM": (99.4, 97.6, 91.1, 89.9, 92.1, 93.4, 83.3, 98.9, 90.8, 99.2),
}
QUALITY = 0.0104  # the tutorial's conv recipe after 20 epochs at batch 20


def load(name):
    path = os.path.join(ROOT, "bench", name)
    if not os.path.exists(path):
        sys.exit(f"report: bench/{name} is missing: run the bench command that writes it "
                 "(its docstring says which), then python bench/report.py")
    with open(path) as f:
        return json.load(f)


def provenance(results, name, command, note=""):
    """`note`, then where a table's figures come from: the file, the command,
    the machine."""
    machine = results.get("machine")
    if not machine:
        where = "machine not recorded"
    else:
        avx = {True: ", AVX-512", False: ", AVX2 only"}.get(machine.get("avx512"), "")
        where = (f"{machine['cpu']}{avx}, {machine['cpu_count']} cores, TensorFlow "
                 f"{machine['tensorflow']}, Keras {machine['keras']}, "
                 + (f"commit {machine['commit']}" if machine.get("commit")
                    else "commit not recorded"))
    return (f"{note} " if note else "") + (
        f"_`bench/{name}`, written by `{results.get('command', command)}`: {where}._")


def targets(results):
    """Each of `bench/run.py`'s targets: (description, measured, met)."""
    runs, pca = results["runs"], results["pca_32_test_mse"]
    int8 = results["export"]["files"]["tflite/reconstruct_int8.tflite"]
    latency = results["export"]["batch1_latency"]["median_seconds"]
    clock = results["time_to_quality_seconds"]
    conv = runs["conv"]
    steps = results.get("steps", {})
    return [
        ("linear: test MSE within 2% of PCA-32",
         f"{runs['linear']['test_mse'] / pca - 1:+.1%}", runs["linear"]["test_mse"] <= 1.02 * pca),
        ("conv, latent 32: test MSE <= 0.0065 within 600 s of training",
         f"{conv['test_mse']:.4f} in {conv['train_seconds']:.0f} s",
         conv["test_mse"] <= 0.0065 and conv["train_seconds"] <= 600),
        (f"conv: test MSE below {QUALITY} within 60 s of training",
         "never" if clock is None else f"{clock:.0f} s", clock is not None and clock <= 60),
        ("pipeline with noise / in memory >= 0.95",
         f"{results['pipeline']['noisy_over_in_memory']:.2f}",
         results["pipeline"]["noisy_over_in_memory"] >= 0.95),
        *[(f"{variant} at batch {steps[variant]['batch_size']}: train.py "
           ">= 0.95 of a hand-written loop's images/s",
           f"{steps[variant]['default_vs_loop']:.2f}", steps[variant]["default_vs_loop"] >= 0.95)
          for variant in ("linear", "conv") if variant in steps],
        ("full-int8 TFLite <= 30% of float32 size",
         f"{int8['size_vs_float32']:.0%}", int8["size_vs_float32"] <= 0.30),
        ("full-int8 TFLite: <= 10% more test MSE",
         f"{int8['test_mse_increase']:+.1%}", int8["test_mse_increase"] <= 0.10),
        ("LiteRT batch-1 latency below the SavedModel's",
         f"{latency['litert_float32'] * 1e3:.2f} ms vs {latency['saved_model'] * 1e3:.2f} ms",
         latency["litert_float32"] < latency["saved_model"]),
    ]


def runs(results, name="results.json", command="python bench/run.py"):
    """bench/run.py's main table: every variant's quality and speed."""
    lines = ["| run | test MSE | own figures | train s | images/s | parameters |",
             "| --- | --- | --- | --- | --- | --- |",
             f"| PCA, 32 components | {results['pca_32_test_mse']:.4f} | | | | |"]
    for run, m in results["runs"].items():
        figures = ", ".join(f"{k} {m[k]:.4g}" for k in m["figures"])
        lines.append(f"| {run} ({m['epochs']} epochs) | {m['test_mse']:.4f} | {figures} "
                     f"| {m['train_seconds']:.0f} | {m['train_images_per_second']:,.0f} "
                     f"| {m['parameters']:,} |")
    lines += ["", provenance(results, name, command, f"All {results['train_examples']:,} "
                             "training images, latent size 32.")]
    return "\n".join(lines)


def benchmark(results, name="results.json", command="python bench/run.py"):
    """bench/run.py's targets and the conv export, as it prints them after `runs`."""
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    lines += [f"| {t} | {value} | {'yes' if met else '**no**'} |"
              for t, value, met in targets(results)]
    lines += ["", "| conv export | bytes | vs float32 | test MSE |", "| --- | --- | --- | --- |"]
    for file, entry in results["export"]["files"].items():
        if file == "saved_model" or file.startswith("tflite/reconstruct"):
            ratio = f"{entry['size_vs_float32']:.0%}" if "size_vs_float32" in entry else ""
            mse = f"{entry['test_mse']:.5f}" if "test_mse" in entry else ""
            lines.append(f"| {file} | {entry['size_bytes']:,} | {ratio} | {mse} |")
    latency = results["export"]["batch1_latency"]["median_seconds"]
    pipe = results["pipeline"]
    lines += ["", "Batch-1 latency (median): " + ", ".join(
        f"{k} {v * 1e3:.2f} ms" for k, v in latency.items()) + ". Training fed by the "
        f"pipeline / from one cached batch: {pipe['pipeline_over_in_memory']:.2f}, with noise "
        f"{pipe['noisy_over_in_memory']:.2f} (paired medians of {pipe['rounds']} rounds). "
        + provenance(results, name, command)]
    return "\n".join(lines)


def steps(results, name="results-quick.json", command="python bench/run.py --quick"):
    """Per-step speed: train.py's default against a hand-written loop."""
    lines = ["| recipe | batch | train.py images/s | hand-written loop images/s | ratio |",
             "| --- | --- | --- | --- | --- |"]
    for variant, speed in results["steps"].items():
        rates = speed["images_per_second"]
        lines.append(f"| {variant} | {speed['batch_size']} | {rates['default']:,.0f} "
                     f"| {rates['loop']:,.0f} | {speed['default_vs_loop']:.2f} |")
    rounds = len(next(iter(results["steps"].values()))["rounds"])
    lines += ["", provenance(results, name, command, f"{rounds} round(s) on "
                             f"{results['train_examples']:,} images, tracing included.")]
    return "\n".join(lines)


def steps_per_execution(results, name="steps.json", command="python bench/steps.py"):
    """bench/steps.py: several steps per execution, one, XLA, and a hand-written loop."""
    ways = {"default": "default", "spe_1": "--steps_per_execution=1", "jit": "--jit_compile",
            "loop": "hand-written loop", "loop_jit": "that loop with XLA"}
    lines = []
    for variant, result in results["variants"].items():
        rates = result["images_per_second"]
        shown = [way for way in ways if way in rates]
        if not lines:
            lines += ["| recipe (batch) | " + " | ".join(ways[w] for w in shown) + " |",
                      "| --- |" + " --- |" * len(shown)]
        cells = [f"{rates[w]:,.0f}" + ("" if w == "default" else
                                        f" ({result[f'default_vs_{w}']:.2f}x)") for w in shown]
        lines.append(f"| {variant} ({result['batch_size']}, {result['upsampling'] or 'dense'}) | "
                     + " | ".join(cells) + " |")
    lines += ["", provenance(results, name, command, f"Images/s over one epoch of "
                             f"{results['train_examples']:,} images, tracing included; in "
                             "brackets, the default's speed over that way's (paired medians).")]
    return "\n".join(lines)


def anomaly(detector, baselines):
    """One-class AUROC per class: the detector (`bench/anomaly.json`, the
    first variant there) with its training seconds and true-positive rate at
    the calibrated threshold, the other variants (`bench/anomaly-baselines.json`)
    and the published per-class figures; then means, seconds and rates."""
    runs = detector["runs"] + baselines["runs"]
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    by = {(r["variant"], r["normal_class"]): r for r in runs}
    classes = sorted({r["normal_class"] for r in detector["runs"]})
    first = variants[0]
    header = [first, "training s", "TPR (%) at 1% FPR", *variants[1:], *PUBLISHED_PER_CLASS]
    lines = ["| normal class | " + " | ".join(header) + " |", "| --- |" + " --- |" * len(header)]
    for c in classes:
        run = by[first, c]
        cells = [f"{100 * run['test_auroc']:.1f}", f"{run['train_seconds']:.0f}",
                 f"{100 * run['test_tpr_at_threshold']:.1f}",
                 *(f"{100 * by[v, c]['test_auroc']:.1f}" for v in variants[1:]),
                 *(f"{published[c]:.1f}" for published in PUBLISHED_PER_CLASS.values())]
        lines.append(f"| {c} {NAMES[c]} | " + " | ".join(cells) + " |")

    def mean(variant, key, scale=1):
        return statistics.mean(scale * by[variant, c][key] for c in classes)

    means = [f"**{mean(first, 'test_auroc', 100):.1f}**", f"{mean(first, 'train_seconds'):.0f}",
             f"{mean(first, 'test_tpr_at_threshold', 100):.1f}",
             *(f"**{mean(v, 'test_auroc', 100):.1f}**" for v in variants[1:]),
             *(f"**{statistics.mean(p[c] for c in classes):.1f}**"
               for p in PUBLISHED_PER_CLASS.values())]
    lines.append("| **mean** | " + " | ".join(means) + " |")
    lines += ["| training s per class | | | | " + " | ".join(
        f"{mean(v, 'train_seconds'):.0f}" for v in variants[1:]) + " |" + " |" * len(
        PUBLISHED_PER_CLASS)]
    lines += ["| TPR (%) at the calibrated threshold | | | | " + " | ".join(
        f"{mean(v, 'test_tpr_at_threshold', 100):.1f}" for v in variants[1:]) + " |" + " |" * len(
        PUBLISHED_PER_CLASS)]

    def fpr_range(variant):
        rates = [100 * by[variant, c].get("served_fpr", by[variant, c]["test_fpr_at_threshold"])
                 for c in classes]
        return f"{variant} {min(rates):.1f}-{max(rates):.1f}"

    served = [by[first, c] for c in classes if "served_fpr" in by[first, c]]
    gap = max((abs(r["served_auroc"] - r["test_auroc"]) for r in served), default=0)
    within = (f" ({first}: as served by each run's exported SavedModel, within 3 standard "
              f"deviations of the calibration for {sum(r['served_fpr_within_tolerance'] for r in served)}"
              f" of {len(served)} classes; its AUROC there equals the table's "
              + ("exactly" if gap == 0 else f"to {gap:.0e}") + ")"
              if served else "")
    lines += ["", "FPR (%) of the calibrated threshold on each class's normal test images"
              + within + ": " + ", ".join(fpr_range(v) for v in variants) + ". Published means: "
              + ", ".join(f"{k} {v}" for k, v in PUBLISHED.items()) + ".",
              "", provenance(detector, "anomaly.json", "python bench/anomaly.py") + " "
              + provenance(baselines, "anomaly-baselines.json", "python bench/anomaly.py")]
    return "\n".join(lines)


def anomaly_views(results, name="anomaly-views.json", command="python bench/anomaly_views.py"):
    """The restoration detector's AUROC per class, whole and by part."""
    parts = [p for p in results["runs"][0] if p != "normal_class"]
    lines = ["| normal class | " + " | ".join(parts) + " |", "| --- |" + " --- |" * len(parts)]
    for run in results["runs"]:
        c = run["normal_class"]
        lines.append(f"| {c} {NAMES[c]} | " + " | ".join(
            f"{100 * run[p]:.1f}" for p in parts) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{statistics.mean(100 * r[p] for r in results['runs']):.1f}**" for p in parts) + " |")
    lines += ["", provenance(results, name, command, "AUROC (%) of bench/anomaly.py's "
                             "restoration runs, rescored by part.")]
    return "\n".join(lines)


def defects(*sources, command="python bench/defects.py"):
    """Synthetic defects: image AUROC, pixel AUROC and PRO per class and
    variant; then each variant's means, by kind of defect, and with the map
    smoothed otherwise; and how the served maps agree. `sources`: `(results,
    file name)` pairs, each of the same classes; a variant's runs are the
    last source's that has it."""
    latest = {r["variant"]: name for part, name in sources for r in part["runs"]}
    results = {**sources[0][0], "runs": [r for part, name in sources for r in part["runs"]
                                         if latest[r["variant"]] == name]}
    kinds = results["defects"]
    variants = list(dict.fromkeys(r["variant"] for r in results["runs"]))
    by = {(r["variant"], r["normal_class"]): r for r in results["runs"]}
    classes = sorted({r["normal_class"] for r in results["runs"]})
    keys = {"image AUROC": "test_auroc", "pixel AUROC": "test_pixel_auroc", "PRO": "test_pro"}
    header = [f"{v} {k}" for v in variants for k in keys]
    lines = ["| normal class | " + " | ".join(header) + " |", "| --- |" + " --- |" * len(header)]
    for c in classes:
        lines.append(f"| {c} {NAMES[c]} | " + " | ".join(
            f"{100 * by[v, c][k]:.1f}" for v in variants for k in keys.values()) + " |")
    lines.append("| **mean** | " + " | ".join(
        f"**{statistics.mean(100 * by[v, c][k] for c in classes):.1f}**"
        for v in variants for k in keys.values()) + " |")

    means = {"image AUROC": "test_auroc",
             **{f"{k} images only": f"served_auroc_{k}" for k in kinds},
             "image AUROC of the map's highest pixel": "served_map_max_auroc",
             "TPR at the threshold": "test_tpr_at_threshold"}
    lines += ["", "| mean over classes | " + " | ".join(means) + " | training s |",
              "| --- |" + " --- |" * (len(means) + 1)]
    for v in variants:
        runs = [by[v, c] for c in classes]
        lines.append(f"| {v} | " + " | ".join(
            f"{statistics.mean(100 * r[k] for r in runs):.1f}" for k in means.values())
            + f" | {statistics.mean(r['train_seconds'] for r in runs):.0f} |")

    sigmas = list(results["runs"][0]["by_map_sigma"])
    lines += ["", "| mean pixel AUROC / PRO, the map smoothed by a sigma (px) of | "
              + " | ".join(sigmas) + " |", "| --- |" + " --- |" * len(sigmas)]
    for v in variants:
        runs = [by[v, c] for c in classes]
        own = {r["map_sigma"] for r in runs}
        lines.append(f"| {v} (its own: {', '.join(f'{s:g}' for s in sorted(own))}) | " + " | ".join(
            f"{statistics.mean(100 * r['by_map_sigma'][s]['pixel_auroc'] for r in runs):.1f} / "
            f"{statistics.mean(100 * r['by_map_sigma'][s]['pro'] for r in runs):.1f}"
            for s in sigmas) + " |")
    gap = max(r["served_pixel_auroc_difference"] for r in results["runs"])
    first = results["runs"][0]
    lines += ["", (
        f"AUROC, TPR (at the threshold calibrated to 1% FPR) and PRO in %; a kind's column "
        f"is its {first['test_masked_images'] // len(kinds)} images against the "
        f"{first['test_normal_images']} good ones, as served. The pixel AUROC "
        f"recomputed from each exported SavedModel's `anomaly_map` (PNG bytes in, masks read "
        f"apart) differs from the reported one by {gap:.1g} at most. ")
        + " ".join(provenance(part, name, command, ", ".join(
            v for v in variants if latest[v] == name) + ":") for part, name in sources)]
    return "\n".join(lines)


def textures(*sources, command="python bench/textures.py"):
    """Real texture photographs: per texture and variant image AUROC / pixel
    AUROC / PRO / TPR at the calibrated threshold / training seconds, and
    each variant's means, from `sources`, `(results, file name)` pairs; a
    variant run at several seeds shows their means, and each seed's."""
    runs = [r for results, _ in sources for r in results["runs"]]
    results = sources[0][0]
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    textures = list(dict.fromkeys(r["texture"] for r in runs))
    by = {}
    for r in runs:
        by.setdefault((r["variant"], r["texture"]), []).append(r)
    keys = ("test_auroc", "test_pixel_auroc", "test_pro", "test_tpr_at_threshold")

    def cell(runs):
        if any("failed" in r for r in runs):
            return "training " + ", ".join(r["failed"].split()[-1] for r in runs if "failed" in r)
        figures = [f"{statistics.mean(100 * r[k] for r in runs):.1f}" for k in keys]
        return " / ".join(figures) + f" ({statistics.mean(r['train_seconds'] for r in runs):.0f} s)"

    lines = ["| " + " | ".join(["variant", *textures, "**mean**"]) + " |",
             "| --- |" + " --- |" * (len(textures) + 1)]
    for v in variants:
        lines.append(f"| {v} | " + " | ".join(cell(by[v, t]) if (v, t) in by else "–"
                                             for t in textures)
                     + f" | **{cell([r for t in textures for r in by.get((v, t), [])])}** |")
    notes = [provenance(r, n, command) for r, n in sources]
    size = results["size"]
    highest = _per_texture(by, variants, textures, ("map_max_auroc",))
    checked = _per_texture(by, variants, textures,
                           ("validation_simulated_auroc", "validation_simulated_pixel_auroc"))
    flagged = _per_texture(by, variants, textures, ("test_fpr_at_threshold",))
    single = {(v, t): runs for (v, t), runs in by.items() if len(runs) == 1}
    intervals = _per_texture(single, variants, textures, ("test_auroc_interval",),
                             lambda intervals: "-".join(f"{100 * x:.0f}" for x in intervals[0]))
    lines += ["", (f"{size}x{size} crops; image AUROC / pixel AUROC / PRO / TPR at the "
                   f"threshold calibrated on the validation crops, in %, and training seconds. ")
              + _by_seed(by, variants, textures)
              + (f"The image AUROC's 95% interval (a bootstrap of the test crops), "
                 f"{', '.join(textures)}: {intervals}. " if intervals else "")
              + (f"Good test crops the threshold flags (FPR, %), {', '.join(textures)}: "
                 f"{flagged}. " if flagged else "")
              + (f"Image AUROC of the map's highest pixel alone, {', '.join(textures)}: "
                 f"{highest}. " if highest else "")
              + (f"Simulated anomalies in the validation crops' tiles (the run's self-check), "
                 f"image / pixel AUROC, {', '.join(textures)}: {checked}. " if checked else "")
              + " ".join(notes)]
    return "\n".join(lines)


def _by_seed(by, variants, textures):
    """"V's cells are the means of seeds ... (its mean image / pixel AUROC
    by seed: ...)" for each variant run at several seeds (– for a seed with
    a failed run), else ""."""
    notes = []
    for v in variants:
        runs = [r for t in textures for r in by.get((v, t), [])]
        seeds = sorted({r.get("seed", 0) for r in runs})
        if len(seeds) < 2:
            continue
        means = []
        for seed in seeds:
            ran = [r for r in runs if r.get("seed", 0) == seed]
            means.append("–" if any("failed" in r for r in ran) else " / ".join(
                f"{statistics.mean(100 * r[k] for r in ran):.1f}"
                for k in ("test_auroc", "test_pixel_auroc")))
        notes.append(f"{v}'s cells are the means of seeds {', '.join(map(str, seeds))} (its "
                     f"mean image / pixel AUROC by seed: {', '.join(means)}). ")
    return "".join(notes)


def _per_texture(by, variants, textures, keys, shown=None):
    """"variant a / b, c / d; ...": each of `keys` per texture as `shown`
    writes its runs' values (default: their mean, in %), for the variants
    whose runs of every texture have them."""
    shown = shown or (lambda values: f"{100 * statistics.mean(values):.1f}")
    return "; ".join(
        f"{v} " + ", ".join(" / ".join(shown([r[k] for r in by[v, t]]) for k in keys)
                            for t in textures)
        for v in variants if all((v, t) in by and all(r.get(k) is not None for r in by[v, t])
                                 for t in textures for k in keys))


def large(results, name="large.json", command="python bench/large.py"):
    """The camera-sized run: each process's peak memory and seconds, the
    run's figures and what its export served."""
    size, run, served = results["size"], results.get("run", {}), results.get("served")
    lines = ["| process | exit | seconds | peak memory |", "| --- | --- | --- | --- |"]
    for step in ("train", "export"):
        if step in results:
            entry = results[step]
            peak = entry["peak_memory_mib"]
            label = {"train": "train.py", "export": "python -m export"}[step]
            lines.append(f"| `{label}` | {entry['exit_code']} | "
                         f"{entry['seconds']:.0f} | "
                         + (f"{peak / 1024:.2f} GiB |" if peak else "not measured |"))
    text = [f"{size}x{size} RGB, {results['train_images']} good training images: "]
    if run:
        text.append(f"`{run['variant']}` in tiles of {run['tile']} px, batch {run['batch_size']}, "
                    f"{run['epochs']} epochs; image AUROC {100 * run['test_auroc']:.1f}, "
                    f"pixel AUROC {100 * run['test_pixel_auroc']:.1f}, PRO "
                    f"{100 * run['test_pro']:.1f}. ")
    if served:
        shape = "x".join(map(str, served["anomaly_map_shape"]))
        inside = "inside" if served["map_peak_inside_mask"] else "outside"
        text.append(f"`serving_bytes` on one test PNG (a small defect) returned a {shape} "
                    f"`anomaly_map`, its highest pixel {inside} the defect's mask. ")
        seconds = served.get("seconds_per_image")
        if seconds:
            files = [f"{seconds[f'tflite_{kind}']:.2f} s with the {what}" for kind, what in (
                ("float32", "float32 `reconstruct` file"), ("dynamic", "dynamic-range one"),
                ("int8", "full-integer one")) if f"tflite_{kind}" in seconds]
            files = " and ".join([", ".join(files[:-1]), files[-1]] if files[1:] else files)
            text.append(f"One image's request took {seconds['serving_bytes']:.2f} s there "
                        f"(PNG in); in LiteRT, a thread per core, {files} "
                        f"(medians of {served['serving_repeats']}, after a first). ")
        sizes = served.get("reconstruct_bytes")
        if sizes:
            kinds = [kind for kind in ("float32", "float16", "dynamic", "int8") if kind in sizes]
            text.append("The `reconstruct` files: " + ", ".join(
                f"{kind} {sizes[kind]:,} bytes" for kind in kinds) + ". ")
    notes = provenance(results, name, command)
    if "export_command" in results:  # the export rerun apart (bench/large.py --export_only)
        notes += " Export: " + provenance({"command": results["export_command"],
                                           "machine": results["export_machine"]}, name, command)
    return "\n".join(lines + ["", "".join(text) + notes])


def variants(results, name="variants.json", command="python bench/variants.py"):
    """Each variant against the same model without its ingredient."""
    lines = ["| run | test_mse | figures of merit | train s |", "| --- | --- | --- | --- |"]
    for r in results["runs"]:
        m = r["metrics"]
        shown = ", ".join(f"{k} {m[k]:.4g}" for k in r["figures"])
        lines.append(f"| {r['name']} | {m['test_mse']:.4f} | {shown} | {m['train_seconds']:.0f} |")
    lines += ["", provenance(results, name, command, f"{results['epochs']} epochs on the first "
                             f"{results['train_examples']:,} Fashion-MNIST training images, "
                             "seed 0.")]
    return "\n".join(lines)


def memory(results, name="memory.json", command="python bench/memory.py"):
    """A streamed run's peak RSS with test splits of several sizes."""
    lines = ["| test split | test images | peak RSS (MiB) | test MSE |",
             "| --- | --- | --- | --- |"]
    for fraction, run in results["runs"].items():
        lines.append(f"| {float(fraction):.1%} | {run['test_images']:,} "
                     f"| {run['peak_memory_mib']:,.0f} | {run['test_mse']:.5f} |")
    shape = "x".join(map(str, results["image_shape"]))
    lines += ["", provenance(results, name, command, (
        f"{results['images']:,} PNG files of {shape} ({results['decoded_mib']:,.0f} MiB "
        f"decoded), `--input=stream --memory_limit_mib={results['memory_limit_mib']}`, one "
        f"epoch of `linear` on 2,000 of them: the peaks differ by "
        f"{results['peak_difference_mib']:.0f} MiB at most."))]
    return "\n".join(lines)


def evaluation(results, name="evaluation.json", command="python bench/evaluation.py"):
    """A detector run's peak RSS and evaluation time as its test split grows."""
    lines = ["| test images | peak RSS (MiB) | evaluation's peak RSS (MiB) | evaluation s "
             "| training s | image AUROC | pixel AUROC (bound) | PRO (bound) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for count, run in results["runs"].items():
        lines.append(f"| {int(count):,} | {run['peak_memory_mib']:,.0f} "
                     f"| {run['evaluation_peak_memory_mib']:,.0f} "
                     f"| {run['evaluation_seconds']:.1f} | {run['train_seconds']:.1f} "
                     f"| {run['test_auroc']:.4f} | {run['test_pixel_auroc']:.4f} "
                     f"({run['test_pixel_auroc_bound']:.1g}) | {run['test_pro']:.4f} "
                     f"({run['test_pro_bound']:.1g}) |")
    shape = "x".join(map(str, results["image_shape"]))
    largest = max(results["runs"], key=int)
    lines += ["", provenance(results, name, command, (
        f"MVTec AD's layout of {shape} images, {results['train_images']} good training "
        f"images, half of the test images with a spot and its mask; `train.py "
        f"{' '.join(results['run_flags'])}`, input as the defaults choose. The whole runs' "
        f"peaks differ by {results['peak_difference_mib']:.0f} MiB (training's, whose "
        f"tf.data buffers vary from run to run), evaluation's by "
        f"{results['evaluation_peak_difference_mib']:.0f} MiB. The exported `serving_default` took "
        f"{results['serving_default_seconds']:.1f} s over the same {int(largest):,} test "
        f"images (decoded beforehand): evaluation took "
        f"{results['evaluation_over_serving']:.2f} of that."))]
    return "\n".join(lines)


def pipeline(results, name="pipeline.json", command="python bench/pipeline.py"):
    """The input pipeline: training fed by each stream, and each stream alone."""
    ratios = {"pipeline_over_in_memory": "the pipeline / one cached batch",
              "noisy_over_in_memory": "the pipeline with noise / one cached batch",
              "stream_over_pipeline": "a stream of PNG files / the pipeline from memory",
              "records_over_pipeline": "TFDS record files / the pipeline from memory"}
    lines = [f"| training `{results['variant']}` (batch {results['batch_size']}) fed by | "
             "speed ratio |", "| --- | --- |"]
    lines += [f"| {text} | {results[key]:.2f} |" for key, text in ratios.items()]
    lines += ["", "| the stream alone, no training | images/s |", "| --- | --- |"]
    lines += [f"| {source.replace('_', ' ')} | {rate:,.0f} |"
              for source, rate in results["input_only_images_per_second"].items()]
    lines += ["", provenance(results, name, command, (
        f"Filling a `--cache_dir` of the 5,000 JPEG files took "
        f"{results['cache_fill_seconds_jpeg_256x256_to_64x64x3']:.1f} s. Ratios are paired "
        f"medians of {results['rounds']} rounds."))]
    return "\n".join(lines)


def suite(results, name="suite.json", command="python bench/suite.py"):
    """The test suite's counts, time and slowest tests."""
    counts = ", ".join(f"{n} {kind}" for kind, n in results["counts"].items())
    lines = [f"`{results['pytest']}`: {counts} in {results['pytest_seconds'] / 60:.1f} min of "
             f"pytest time ({results['wall_seconds'] / 60:.1f} min wall, without the install). "
             "The slowest:", "", "| seconds | test |", "| --- | --- |"]
    lines += [f"| {t['seconds']:.1f} | {t['test']} |" for t in results["slowest"]]
    lines += ["", provenance(results, name, command)]
    return "\n".join(lines)


def suite_against(results, reference, name="suite-reference.json"):
    """The suite's time as a share of an older commit's, run back to back on
    one machine: what a change did to it, whatever that machine's speed."""
    old = reference["machine"]["commit"]
    return (f"Commit {old}'s suite ({reference['counts']['passed']} passed), run back to back "
            f"with it on the same machine, took {reference['pytest_seconds']:.0f} s: this one takes "
            f"{results['pytest_seconds'] / reference['pytest_seconds']:.2f} of its time. "
            f"_`bench/{name}`, written by `{reference['command']}` in a worktree of {old}._")


BLOCKS = {
    "suite": lambda: suite(load("suite.json")) + "\n\n" + suite_against(
        load("suite.json"), load("suite-reference.json")),
    "pipeline": lambda: pipeline(load("pipeline.json")),
    "runs": lambda: runs(load("results.json")),
    "benchmark": lambda: benchmark(load("results.json")),
    "steps": lambda: steps(load("results-quick.json")),
    "steps_per_execution": lambda: steps_per_execution(load("steps.json")),
    "anomaly": lambda: anomaly(load("anomaly.json"), load("anomaly-baselines.json")),
    "variants": lambda: variants(load("variants.json")),
    "anomaly_views": lambda: anomaly_views(load("anomaly-views.json")),
    "memory": lambda: memory(load("memory.json")),
    "evaluation": lambda: evaluation(load("evaluation.json")),
    "defects": lambda: defects((load("defects.json"), "defects.json"),
                               (load("defects-conv.json"), "defects-conv.json"),
                               (load("defects-draem.json"), "defects-draem.json")),
    "large": lambda: large(load("large.json")),
    "textures": lambda: textures((load("textures.json"), "textures.json"),
                                 (load("textures-baselines.json"), "textures-baselines.json")),
}
_BLOCK = re.compile(r"(<!-- report:(\w+) -->\n)(.*?)(<!-- /report:\2 -->)", re.S)


def rendered(text):
    """`text` with every marked block rendered afresh; ValueError on an unknown one."""
    def block(match):
        if match.group(2) not in BLOCKS:
            raise ValueError(f"unknown report block {match.group(2)!r}; "
                             f"known: {', '.join(BLOCKS)}")
        return match.group(1) + BLOCKS[match.group(2)]() + "\n" + match.group(4)

    return _BLOCK.sub(block, text)


def main(argv):
    check = "--check" in argv[1:]
    stale = []
    for document in DOCUMENTS:
        path = os.path.join(ROOT, document)
        with open(path) as f:
            text = f.read()
        new = rendered(text)
        if new != text:
            stale.append(document)
            if not check:
                with open(path, "w") as f:
                    f.write(new)
    if check and stale:
        sys.exit(f"report: {', '.join(stale)} not rendered from the results files; "
                 "run python bench/report.py")
    print(("stale: " if check and stale else "rendered: " if stale else "up to date: ")
          + ", ".join(stale or DOCUMENTS))


if __name__ == "__main__":
    main(sys.argv)
