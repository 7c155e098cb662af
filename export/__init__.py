"""Exporting trained models for TF Serving (SavedModel) and phones (TFLite).

Not written yet: see the export issue. `keras_ae.training` already saves the
trained model as `model_dir/model.keras`, which `keras.saving.load_model`
reads back.
"""
