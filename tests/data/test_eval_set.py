"""The eval set cache: same inputs reuse the files, changed inputs rebuild them."""

from dataclasses import dataclass, field

import numpy as np

from autotune.data.eval_set import MANIFEST_FILE, ensure_eval_set
from autotune.data.sources import MovieLensSource, SyntheticSource
from autotune.data.synthetic import SyntheticShape

SHAPE = SyntheticShape(users=60, items=200, ratings=2_400)


@dataclass
class CountingSource:
    """A source that counts how often its ratings were loaded."""

    inner: object
    loads: list = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.inner.name

    def fingerprint(self) -> str:
        return self.inner.fingerprint()

    def load(self):
        self.loads.append(1)
        return self.inner.load()


def test_files_follow_the_design_contract(tmp_path):
    eval_set = ensure_eval_set(SyntheticSource(SHAPE, seed=0), tmp_path, seed=0)
    assert eval_set.eval_path == tmp_path / "eval.npz"
    assert eval_set.train_path == tmp_path / "train.npz"
    with np.load(eval_set.eval_path) as arrays:
        assert set(arrays.files) == {"users", "items"}
        assert arrays["users"].dtype == np.int32 and arrays["items"].shape == (60, 1000)
    with np.load(eval_set.train_path) as arrays:
        assert set(arrays.files) == {"users", "items"} and arrays["items"].dtype == np.int32
    assert eval_set.manifest["num_users"] == 60 and eval_set.manifest["dataset"] == "synthetic"


def test_same_inputs_reuse_the_cache(tmp_path):
    source = CountingSource(SyntheticSource(SHAPE, seed=0))
    first = ensure_eval_set(source, tmp_path, seed=0)
    second = ensure_eval_set(source, tmp_path, seed=0)
    assert len(source.loads) == 1 and first == second


def test_changed_seed_shape_or_negatives_rebuild(tmp_path):
    base = ensure_eval_set(SyntheticSource(SHAPE, seed=0), tmp_path, seed=0)
    variants = [
        ensure_eval_set(SyntheticSource(SHAPE, seed=0), tmp_path, seed=1),
        ensure_eval_set(SyntheticSource(SHAPE, seed=3), tmp_path, seed=0),
        ensure_eval_set(SyntheticSource(SyntheticShape(60, 200, 2_500), seed=0), tmp_path, seed=0),
        ensure_eval_set(SyntheticSource(SHAPE, seed=0), tmp_path, seed=0, negatives=99),
    ]
    assert len({base.fingerprint, *(variant.fingerprint for variant in variants)}) == 5
    with np.load(variants[-1].eval_path) as arrays:
        assert arrays["items"].shape == (60, 100)


def test_changed_file_content_rebuilds(tmp_path):
    path = tmp_path / "ml-1m" / "ratings.dat"
    path.parent.mkdir()
    rows = [f"{user}::{item}::4::{item}" for user in (1, 2) for item in range(1, 31)]
    path.write_text("\n".join(rows) + "\n")
    source = CountingSource(MovieLensSource("ml-1m", tmp_path))
    first = ensure_eval_set(source, tmp_path / "ml-1m", seed=0)
    ensure_eval_set(source, tmp_path / "ml-1m", seed=0)
    path.write_text("\n".join(rows + ["3::" + "::".join(["1", "4", "5"])]) + "\n")
    changed = ensure_eval_set(source, tmp_path / "ml-1m", seed=0)
    assert len(source.loads) == 2 and changed.fingerprint != first.fingerprint


def test_an_unfinished_build_is_rebuilt(tmp_path):
    source = CountingSource(SyntheticSource(SHAPE, seed=0))
    ensure_eval_set(source, tmp_path, seed=0)
    (tmp_path / MANIFEST_FILE).unlink()
    ensure_eval_set(source, tmp_path, seed=0)
    assert len(source.loads) == 2
