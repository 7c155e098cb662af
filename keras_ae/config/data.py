"""DataConfig: where the images come from and how they are fed."""

import dataclasses

from keras_ae import choices
from keras_ae.choices import INPUTS
from keras_ae.config import checks


# DataConfig fields that only one kind of source reads.
_SOURCE_FIELDS = {"test_dir": "folder", "test_mask_dir": "folder", "test_fraction": "folder",
                  "validation_dir": "folder",
                  "skip_bad_images": "folder", "cache_dir": "folder",
                  "image_key": "tfds", "train_split": "tfds", "test_split": "tfds"}
_SOURCE_NAMES = {"folder": "--dataset=folder", "tfds": "TensorFlow Datasets names other than "
                 + ", ".join(choices.BUILT_IN_DATASETS)}


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where the images come from and how they are fed.

    Attributes:
        dataset: one of `keras_ae.data.DATASETS` (read locally first), "folder"
            (the image files under `data_dir`), or any TensorFlow Datasets image
            dataset's name. Default "mnist".
        data_dir: the folder of images; else searched first for a local copy,
            and TFDS's data directory. Default None: only the standard places.
        train_examples: use only the first N training examples. Default None: all.
        batch_size: global batch size, split across all replicas. Default
            None: the variant's recipe's (64 for most).
        noise_stddev: stddev of the Gaussian noise added on the fly to the
            inputs; 0 feeds `(x, x)` pairs. Default None: the recipe's.
        masking_noise: the share of each training input hidden on the fly
            in black squares (`keras_ae.data.pipeline.add_masking`); 0 for
            none. Default None: the recipe's.
        rectangles: a recipe trained on simulated anomalies: the share of
            their masks drawn as rectangles, not blobs
            (`keras_ae.data.anomalies`). Default None: the recipe's for the
            run's images (`Recipe.on_images`), written in before the run.
        grain_at_place: a recipe trained on simulated anomalies: whether
            their grain fill takes the grey of what it covers, so that it
            differs by its grain alone (`keras_ae.data.anomalies`). Default
            None: the recipe's for the run's images, as `rectangles`.
        paste_at_place: a recipe trained on simulated anomalies: the share
            of their pasted images that take the grey of what they cover
            (`keras_ae.data.anomalies`). Default None: the recipe's for the
            run's images, as `rectangles`.
        cells: a recipe trained on simulated anomalies: whether a sixth of
            their fills are cells of Worley noise (`keras_ae.data.anomalies`).
            Default None: the recipe's for the run's images, as `rectangles`.
        eval_noise_stddev: noise of the test inputs for the PSNR figures
            (`test_psnr_noisy`, `test_psnr_denoised`) and `denoising.png`; 0
            skips them. Default None: the training noise.
        seed: the run's seed: initial weights, shuffling, noise, and the
            model's own random draws (the VAE's sampling, the contractive
            penalty's estimate). Default 0.
        download: whether TensorFlow Datasets may download when no local copy
            exists. Default True.
        image_size: `(height, width)` every image is resized to. Default None:
            the data's own (resolved from the data before the run).
        channels: 1 (grey) or 3 (RGB). Default None: the data's own.
        crop_to_aspect_ratio: resize the largest centred crop of the target's
            aspect ratio rather than distort. Default False.
        test_dir: "folder": the test images' folder. Default None: a share of
            `data_dir`'s images, `test_fraction`, chosen by a hash of each
            file's path (stable as files are added).
        test_fraction: "folder" without `test_dir`. Default 0.1.
        test_mask_dir: "folder": ground-truth masks of the test images, as
            MVTec AD's `ground_truth/<defect>/<name>_mask.png`
            (`keras_ae.data.masks`); with them a detector reports pixel AUROC
            and PRO. Default None: `ground_truth/` beside `test_dir` (MVTec AD),
            else inside it (MVTec AD 2), if there.
        validation_dir: "folder", with `anomaly.normal_classes`: normal images
            photographed apart from the training images, in subfolders named
            by class as under `data_dir` (MVTec AD 2's `validation/good/`),
            that the threshold is calibrated on, in place of a share of the
            training images. Default None: `validation/` beside `data_dir`,
            if there (written in before the run); "" for none, holding out
            `anomaly.validation_fraction` of the training images instead.
        skip_bad_images: "folder": leave out files that do not decode (listed
            in metrics.json) instead of failing. Default False.
        image_key: TFDS: the image feature, where there are several.
        train_split, test_split: TFDS splits, in TFDS's syntax (e.g.
            "train[:90%]"). Default "train", "test".
        input: "memory" decodes the training images into memory; "stream"
            reads them from their files batch by batch: a folder's image
            files (`keras_ae.data.image_files`) or a TFDS dataset's record files
            (`keras_ae.data.tfds_records`), not the four built-in datasets;
            "auto" streams those whose decoded training images would exceed
            `memory_limit_mib`, and leaves a folder's test split in its files
            whatever its training images do. A streamed run reads its test and
            validation images from their files too, batch by batch. Default "auto".
        cache_dir: "folder", streamed: decode and shape each training image
            once into this folder and read it from there
            (`keras_ae.data.image_files.cached`), for formats slow to decode.
            Default None: decode every epoch.
        memory_limit_mib: the decoded size (MiB) above which "auto" streams;
            a stream's buffers hold at most half of it. Default None: a
            quarter of this machine's memory.
    """

    dataset: str = "mnist"
    data_dir: str | None = None
    train_examples: int | None = None
    batch_size: int | None = None
    noise_stddev: float | None = None
    masking_noise: float | None = None
    rectangles: float | None = None
    grain_at_place: bool | None = None
    paste_at_place: float | None = None
    cells: bool | None = None
    eval_noise_stddev: float | None = None
    seed: int = 0
    download: bool = True
    image_size: tuple | None = None
    channels: int | None = None
    crop_to_aspect_ratio: bool = False
    test_dir: str | None = None
    test_mask_dir: str | None = None
    validation_dir: str | None = None
    test_fraction: float = 0.1
    skip_bad_images: bool = False
    image_key: str | None = None
    train_split: str = "train"
    test_split: str = "test"
    input: str = "auto"
    memory_limit_mib: int | None = None
    cache_dir: str | None = None

    def __post_init__(self):
        if not self.dataset or not all(c.isalnum() or c in "_-:/." for c in self.dataset):
            raise checks.ConfigError("dataset", f"{self.dataset!r} is not a dataset name; valid: "
                              f"{', '.join(choices.BUILT_IN_DATASETS)}, folder, or a TFDS name")
        checks.require_positive(self, "train_examples", "batch_size")
        checks.require_non_negative(self, "noise_stddev", "eval_noise_stddev", "masking_noise",
                                    "rectangles", "paste_at_place")
        for field, of in (("rectangles", "masks"), ("paste_at_place", "pastes")):
            share = getattr(self, field)
            if share is not None and share > 1:
                raise checks.ConfigError(field, f"{share} is more than all of the {of}; give a "
                                         "share from 0 to 1, e.g. 0.5")
        if self.masking_noise is not None and self.masking_noise >= 1:
            raise checks.ConfigError("masking_noise", f"{self.masking_noise} would hide every "
                                     "square; give a share below 1, e.g. 0.25")
        if self.image_size is not None:
            size = tuple(self.image_size)  # a list from JSON or flags
            if len(size) != 2 or not all(isinstance(d, int) and d > 0 for d in size):
                raise checks.ConfigError("image_size", f"must be HEIGHT,WIDTH, e.g. 64,48; got "
                                  f"{self.image_size!r}")
            object.__setattr__(self, "image_size", size)
        if self.channels not in (None, 1, 3):
            raise checks.ConfigError("channels", f"must be 1 (grey) or 3 (RGB), got {self.channels!r}")
        checks.require_choice("input", self.input, INPUTS)
        checks.require_positive(self, "memory_limit_mib")
        if self.input == "stream" and self.dataset in choices.BUILT_IN_DATASETS:
            raise checks.ConfigError("input", f"stream reads a folder's image files or a TFDS "
                              f"dataset's record files; {self.dataset} loads into memory "
                              "(--input=auto or memory)")
        if not 0 < self.test_fraction < 1:
            raise checks.ConfigError("test_fraction", f"must be in (0, 1), got {self.test_fraction!r}")
        kind = ("folder" if self.dataset == "folder"
                else "local" if self.dataset in choices.BUILT_IN_DATASETS else "tfds")
        defaults = {field.name: field.default for field in dataclasses.fields(self)}
        for field, only in _SOURCE_FIELDS.items():
            if getattr(self, field) != defaults[field] and kind != only:
                raise checks.ConfigError(field, f"applies to {_SOURCE_NAMES[only]} only, not to "
                                  f"dataset {self.dataset!r}")
        if self.dataset == "folder" and not self.data_dir:
            raise checks.ConfigError("data_dir", "dataset 'folder' reads the images under "
                              "--data_dir=DIR; set it")
