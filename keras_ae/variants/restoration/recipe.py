"""The restoration detector's recipe."""

from keras_ae.variants.base_recipe import Recipe


class RestorationRecipe(Recipe):
    """The anomaly detector's (`keras_ae.variants.restoration`): what bench/anomaly.py
    measures as `train.py --normal_classes=K` with nothing else given.

    Tuned on Fashion-MNIST's hardest classes (shirts, pullovers, coats,
    T-shirts) by one-off scripts, bench/anomaly.py measuring the result
    (README's one-class table). Each view's error as "top_k", which a small
    defect moves; the conv recipe's warm-up, without which it collapsed on
    mostly black images (sandals).
    """

    learning_rate = 2e-3
    learning_rate_schedule = "warmup_cosine"
    epochs = 12
    anomaly_score = "top_k"
    # Its map already averages four restorations, and smoothing it costs PRO
    # (bench/defects.py's sweep of sigmas, BUILD.md "Synthetic defects").
    anomaly_map_smoothing = 0.0


RECIPE = RestorationRecipe()
