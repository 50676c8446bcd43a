"""The NCF model: NeuMF, its training, its evaluation and its export.

    config.py     model and training settings, the signature names (no TensorFlow)
    card.py       `model_card.json` read and write (no TensorFlow)
    metrics.py    HR@K and NDCG@K of scores ranked per user (no TensorFlow)
    ownership.py  autotune writes only into model folders it created (no TensorFlow)
    neumf.py      NeuMF as a plain tf.Module with the serving signature
    train.py      Adam on binary cross-entropy with per-epoch resampled negatives
    evaluate.py   HR/NDCG of the model and of the item-popularity ranker
    export.py     SavedModel into `<model-dir>/<version>/`, next to the card
    build.py      train, measure (model and item popularity), export with the card

The public names load on first use (lazy_loader): reading a model card or the metrics
stays cheap, and TensorFlow is imported only where a name needs it.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs={
    "build": ["build_model"],
    "evaluate": ["itempop_hr_ndcg", "score_eval_set"],
    "card": ["read_model_card", "write_model_card"],
    "config": ["NeuMFShape", "TrainingConfig", "signature_description"],
    "export": ["export_model"],
    "metrics": ["HR_LABEL", "NDCG_LABEL", "TOP_K", "hit_rate_and_ndcg"],
    "neumf": ["NeuMF"],
    "ownership": ["is_foreign", "numeric_versions"],
})
