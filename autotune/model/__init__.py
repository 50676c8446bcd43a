"""The NCF model: NeuMF, its training, its evaluation and its export.

    config.py    model and training settings, the signature names (no TensorFlow)
    card.py      `model_card.json` read and write (no TensorFlow)
    neumf.py     NeuMF as a plain tf.Module with the serving signature
    train.py     Adam on binary cross-entropy with per-epoch resampled negatives
    evaluate.py  HR/NDCG of the model and of the item-popularity ranker
    export.py    SavedModel into `<model-dir>/<version>/`, next to the card
    build.py     train, measure (model and item popularity), export with the card

Import the submodules directly: this package does not import TensorFlow by itself, so
reading a model card stays cheap.
"""
