"""MovieLens readers, the synthetic generator, NCF preprocessing and the cached eval set.

    ratings.py    `Ratings`: the one in-memory form every source produces
    movielens.py  readers for ml-1m, ml-100k, ml-20m and ml-latest ratings files
    synthetic.py  an offline MovieLens-1M look-alike with learnable taste (the default)
    sources.py    a source = ratings + fingerprint, for either kind
    ncf.py        NCF preprocessing: filter, re-index, leave-one-out, eval negatives
    eval_set.py   `eval.npz` / `train.npz` on disk, rebuilt only when inputs change
    download.py   `--download`: fetch, verify and unpack a GroupLens zip

Nothing here imports TensorFlow.
"""

from autotune.data.eval_set import EvalSet, ensure_eval_set
from autotune.data.ncf import EVAL_NEGATIVES, MIN_USER_RATINGS, NcfData, build_ncf_data
from autotune.data.ratings import Ratings
from autotune.data.sources import MovieLensSource, SyntheticSource
from autotune.data.synthetic import SyntheticShape, generate_ratings

__all__ = [
    "EVAL_NEGATIVES", "MIN_USER_RATINGS", "EvalSet", "MovieLensSource", "NcfData", "Ratings",
    "SyntheticShape", "SyntheticSource", "build_ncf_data", "ensure_eval_set", "generate_ratings",
]
