"""Training one autoencoder under a tf.distribute strategy, then evaluating it.

`train(config, strategy)` (`run.py`) writes the run's files to
`config.train.model_dir` (their names: `keras_ae.model_dir`):

    config.json           the RunConfig, every default written in (`defaults.py`)
    model.keras           the model, saved after every epoch (`callbacks.py`)
    backup/               weights, optimizer and epoch: a killed run resumes here
    logs/                 TensorBoard logs
    metrics.json          test_mse, train_seconds, train_images_per_second, the
                          variant's own figures, PSNR with noisy test input
                          (`evaluation.py`)
    reconstructions.png   first ten test images over their reconstructions
    denoising.png         noisy test input, reconstruction, clean target
    ...                   the variant's own figures (vae: samples.png, ...)

The step policy (steps per epoch and per execution, XLA) is `steps.py`; the
model and its optimizer, `model.py`.
"""

from keras_ae.model_dir import CONFIG_FILE, DENOISING_FIGURE_FILE, FIGURE_FILE, METRICS_FILE
from keras_ae.model_dir import MODEL_FILE
from keras_ae.training.callbacks import TrainingCollapsed
from keras_ae.training.callbacks import TrainingDiverged
from keras_ae.training.evaluation import evaluate, psnr
from keras_ae.training.model import build_model
from keras_ae.training.defaults import resolve, with_data
from keras_ae.training.run import load_data, train
from keras_ae.training.steps import AUTO_STEPS_PER_EXECUTION, auto_steps_per_execution
from keras_ae.training.steps import with_steps_per_execution

__all__ = [
    "AUTO_STEPS_PER_EXECUTION", "CONFIG_FILE", "DENOISING_FIGURE_FILE", "FIGURE_FILE",
    "METRICS_FILE", "MODEL_FILE", "TrainingCollapsed", "TrainingDiverged", "auto_steps_per_execution",
    "build_model", "evaluate", "load_data", "psnr", "resolve", "train", "with_data",
    "with_steps_per_execution",
]
