"""`autotune prepare`: the eval set and the trained, exported NCF model, built once.

Steps, each skipped when its result is present and current:

1. Ratings: the synthetic generator (default, offline) or a MovieLens file, fetched
   from GroupLens first when `download` is asked for and the file is missing.
2. Eval set: NCF preprocessing cached under `<data-dir>/<dataset>/` (autotune.data).
3. Model: NeuMF trained and exported under `<model-dir>/<version>/` with
   `model_card.json` (autotune.model). Current means the card names the same eval set
   fingerprint and the same training settings, and its version is on disk and loads.

A `--model-dir` autotune did not create (autotune.model.ownership) is the user's own
model: it is checked first (it must load, else exit 2 with the reason), then served as
it is; nothing in it is written or deleted, and no model is trained.

The card carries the reference HR@10/NDCG@10 measured in-process at export and the
item-popularity ranker's on the same eval set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from autotune.assets.checks import check_eval_set, check_model, model_problem
from autotune.data.download import download_movielens
from autotune.data.eval_set import EvalSet, ensure_eval_set
from autotune.data.movielens import ratings_path
from autotune.data.ncf import EVAL_NEGATIVES
from autotune.data.sources import SYNTHETIC, MovieLensSource, RatingsSource, SyntheticSource
from autotune.data.synthetic import SyntheticShape
from autotune.errors import UsageError
from autotune.model.card import read_model_card
from autotune.model.config import (
    NeuMFShape,
    TrainingConfig,
    batch_size_for,
    signature_description,
    training_settings,
)
from autotune.model.metrics import TOP_K
from autotune.model.ownership import is_foreign, numeric_versions
from autotune.paths import default_data_dir, default_model_dir

DEFAULT_EPOCHS = {SYNTHETIC: 4, "ml-100k": 10}  # measured on synthetic look-alikes of these sizes
FALLBACK_EPOCHS = 6  # the other sizes: a margin over the 2-4 epochs the look-alikes need


@dataclass(frozen=True)
class PreparedAssets:
    """What `prepare_assets` made: the eval set files and the model base path with its card."""

    dataset: str
    eval_path: Path
    train_path: Path
    model_dir: Path
    model_card: dict | None
    #: True for a model folder autotune did not create: served as it is
    foreign: bool = False

    @property
    def version_dir(self) -> Path:
        """The SavedModel served: the card's version, else the highest numeric version."""
        if self.model_card and "version" in self.model_card:
            return self.model_dir / str(self.model_card["version"])
        return self.model_dir / str(numeric_versions(self.model_dir)[-1])


def check_assets(assets: PreparedAssets) -> PreparedAssets:
    """Assets prepared elsewhere: the model loads and the eval set reads; `assets` back."""
    check_model(Path(assets.model_dir))
    check_eval_set(Path(assets.eval_path))
    return assets


def _ratings_source(dataset: str, data_dir: Path, seed: int, download: bool,
                    synthetic_shape: SyntheticShape | None, console: Console) -> RatingsSource:
    if dataset == SYNTHETIC:
        if download:
            raise UsageError("--download fetches MovieLens; "
                             "the synthetic dataset needs no download")
        return SyntheticSource(synthetic_shape or SyntheticShape(), seed)
    if synthetic_shape is not None:
        raise UsageError(f"a synthetic shape was given for the MovieLens dataset {dataset}")
    if download and not ratings_path(dataset, data_dir).is_file():
        download_with_bar(dataset, data_dir, console)
    return MovieLensSource(dataset, data_dir)


def download_with_bar(dataset: str, data_dir: Path, console: Console) -> None:
    """`download_movielens` with a bar of the bytes received, their speed and the time left."""
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"downloading {dataset}.zip", total=None)
        download_movielens(dataset, data_dir, on_progress=lambda received, total: progress.update(
            task, completed=received, total=total))


def _is_current(card: dict | None, eval_set: EvalSet, settings: dict, model_dir: Path) -> bool:
    """Whether the exported model was trained on this eval set with these settings, has
    today's serving signature, and loads (a damaged export is rebuilt)."""
    return bool(card
                and card.get("dataset_fingerprint") == eval_set.fingerprint
                and card.get("training") == settings
                and card.get("signature") == signature_description()
                and (model_dir / str(card.get("version")) / "saved_model.pb").is_file()
                and model_problem(model_dir) is None)


class _EpochBars:
    """A rich progress bar per epoch with its running loss, then the epoch's HR/NDCG."""

    def __init__(self, progress: Progress, epochs: int) -> None:
        self._progress, self._epochs = progress, epochs
        self._task: TaskID | None = None
        self._loss_sum, self._steps = 0.0, 0

    def epoch_started(self, epoch: int, steps: int) -> None:
        self._task = self._progress.add_task(f"epoch {epoch + 1}/{self._epochs}", total=steps,
                                             loss=float("nan"))
        self._loss_sum, self._steps = 0.0, 0

    def step_done(self, loss: float) -> None:
        self._loss_sum, self._steps = self._loss_sum + loss, self._steps + 1
        self._progress.update(self._task, advance=1, loss=self._loss_sum / self._steps)

    def epoch_measured(self, epoch: int, loss: float, hr: float, ndcg: float) -> None:
        self._progress.update(self._task, loss=loss,
                              description=f"epoch {epoch + 1}/{self._epochs} "
                                          f"HR@{TOP_K} {hr:.3f} NDCG@{TOP_K} {ndcg:.3f}")


def _train_and_export(dataset: str, eval_set: EvalSet, model_dir: Path, shape: NeuMFShape,
                      config: TrainingConfig, console: Console) -> dict:
    """Train and export (autotune.model.build), with epoch bars unless `console` is quiet."""
    from autotune.model.build import build_model  # imports TensorFlow: only when training

    if console.quiet:
        return build_model(dataset, eval_set, model_dir, shape, config)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.4f}"), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        return build_model(dataset, eval_set, model_dir, shape, config,
                           _EpochBars(progress, config.epochs))


def prepare_assets(dataset: str = SYNTHETIC, data_dir: Path | None = None,
                   model_dir: Path | None = None, epochs: int | None = None, seed: int = 0,
                   download: bool = False, quiet: bool = False,
                   synthetic_shape: SyntheticShape | None = None) -> PreparedAssets:
    """Build (or reuse) the eval set and the exported model of `dataset`.

    `data_dir` defaults to $AUTOTUNE_HOME/data, `model_dir` to the dataset's model base
    path under $AUTOTUNE_HOME, `epochs` to the dataset's tuned value. `seed` drives the
    generator, the eval negatives and training. `synthetic_shape` sizes the synthetic
    dataset (default: MovieLens 1M's); tests use small shapes. `quiet` hides progress.
    """
    data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
    model_dir = Path(model_dir) if model_dir is not None else default_model_dir(dataset)
    console = Console(stderr=True, quiet=quiet)
    source = _ratings_source(dataset, data_dir, seed, download, synthetic_shape, console)
    foreign = is_foreign(model_dir)
    if foreign:
        with console.status(f"loading the model in {model_dir}"):
            check_model(model_dir)
    with console.status(f"building the {dataset} eval set"):
        eval_set = ensure_eval_set(source, data_dir / dataset, seed, EVAL_NEGATIVES)
    if foreign:
        return PreparedAssets(dataset, eval_set.eval_path, eval_set.train_path, model_dir,
                              read_model_card(model_dir), foreign=True)
    shape = NeuMFShape(eval_set.manifest["num_users"], eval_set.manifest["num_items"])
    config = TrainingConfig(epochs=epochs or DEFAULT_EPOCHS.get(dataset, FALLBACK_EPOCHS),
                            batch_size=batch_size_for(eval_set.manifest["train_positives"]),
                            seed=seed)
    card = read_model_card(model_dir)
    if not _is_current(card, eval_set, training_settings(shape, config), model_dir):
        card = _train_and_export(dataset, eval_set, model_dir, shape, config, console)
    return PreparedAssets(dataset, eval_set.eval_path, eval_set.train_path, model_dir, card)


def print_prepared(assets: PreparedAssets) -> None:
    """Print where the eval set and the model are, and the model's reference accuracy."""
    card = assets.model_card
    if assets.foreign or not card:
        print(f"eval set   {assets.eval_path}")
        print(f"train set  {assets.train_path}")
        print(f"model      {assets.version_dir} (not created by autotune: served as it is, "
              "never modified)")
        return
    k = card["k"]
    print(f"dataset    {assets.dataset}: {card['users']} users, {card['items']} items, "
          f"{card['train_positives']} training positives")
    print(f"eval set   {assets.eval_path} ({card['eval_users']} users x "
          f"{card['eval_negatives'] + 1} candidates)")
    print(f"train set  {assets.train_path}")
    print(f"model      {assets.version_dir} (version {card['version']}, {card['epochs']} epochs)")
    print(f"accuracy   HR@{k} {card['hr']:.4f}  NDCG@{k} {card['ndcg']:.4f}  "
          f"(item popularity: HR@{k} {card['itempop_hr']:.4f}  "
          f"NDCG@{k} {card['itempop_ndcg']:.4f})")
