"""Command-line tools for exported models, from a checkout (the library is
`keras_ae.export`, the commands `keras_ae.commands`):

    python -m export --model_dir=runs/conv-fashion_mnist --export_base=exports
        exports a trained run as a TF Serving version (SavedModel) and TFLite files;
    python -m export.client IMAGE --server=http://localhost:8501 --model_name=NAME
        sends an image to TF Serving's REST API and prints the answer.
"""
