"""What a run sends and how it checks the answers: the NCF model's eval set with the
HR/NDCG gate, or any model's recorded requests with the output-agreement gate.

Which one is decided before anything is written (`read_traffic`):

- `--requests FILE`: those records (autotune.measure.records), whatever model is served;
- else a model folder autotune did not create (autotune.model.ownership) whose
  `serving_default` signature is not shaped like the NCF model's (one user and one item
  input): its served version's warmup records, `assets.extra/tf_serving_warmup_requests`
  (TF Serving's format); without them the run is refused, saying what to provide;
- else (autotune's NCF export, or a model shaped like it) the eval set and HR/NDCG, as
  the tutorial measures it (the export's own warmup records are for TF Serving's warmup).

Records are checked against the served version's signature as soon as the model is on
disk: at once for a model folder given, after `autotune prepare`'s training otherwise.
A model measured from records is served under its folder's name, as TF Serving names a
model by `MODEL_NAME`; its studies are their own host class (the model's name and the
records' digest are parts of it, autotune.fleet.host_class).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from autotune.assets.checks import check_model
from autotune.assets.prepare import check_assets, prepare_assets
from autotune.data.eval_rows import EvalRows
from autotune.errors import UsageError
from autotune.launch.base import ModelLocation
from autotune.measure.accuracy import AccuracyGate
from autotune.measure.agreement import AgreementGate, build_agreement_gate
from autotune.measure.records import Records, check_records, read_records
from autotune.measure.rows import DEFAULT_SIGNATURE
from autotune.measure.signature import find_signature, model_signatures, pair_inputs
from autotune.measure.workload import Workload
from autotune.model.ownership import is_foreign, numeric_versions
from autotune.options import DEFAULT_BATCH_SIZE, TuningOptions
from autotune.paths import MODEL_NAME, default_model_dir
from autotune.record.schema import StudyAttr
from autotune.serving.model import latest_version
from autotune.serving.warmup import WARMUP_FILE

if TYPE_CHECKING:
    from autotune.assets.prepare import PreparedAssets

Gate = AccuracyGate | AgreementGate


@dataclass(frozen=True)
class Traffic:
    """What the run's trials send (`workload`) and check (`gate`), to which model."""

    model: ModelLocation
    workload: Workload
    gate: Gate
    #: rows per batch-mode request, as resolved (`--batch-size`, else the traffic's default)
    batch_size: int
    #: what the study records of them (the gate's floors or tolerances, the requests)
    study_attrs: dict[str, object] = field(default_factory=dict)
    #: what names them in the host class: the dataset, or the model and its records
    class_parts: dict[str, object] = field(default_factory=dict)


def read_traffic(options: TuningOptions, assets: "PreparedAssets | None" = None) -> Records | None:
    """The recorded requests the run measures, read and (when the model is on disk)
    checked against it, or None for the NCF eval set; see the module docstring.
    `UsageError` for a file or a model that cannot be measured."""
    model_dir = _model_dir(options, assets)
    if options.requests is not None:
        records = read_records(options.requests)
    elif is_foreign(model_dir):
        records = _own_records(model_dir)
    else:
        return None
    if records is not None and numeric_versions(model_dir):
        check_records(records, model_signatures(model_dir))
    return records


def _model_dir(options: TuningOptions, assets: "PreparedAssets | None") -> Path:
    if assets is not None:
        return Path(assets.model_dir)
    return Path(options.model_dir) if options.model_dir else default_model_dir(options.dataset)


def _own_records(model_dir: Path) -> Records | None:
    """A user's model: None when shaped like NCF's, else its served version's warmup
    records; `UsageError` saying what to provide when it has none."""
    signatures = model_signatures(model_dir)
    if DEFAULT_SIGNATURE in signatures:
        try:
            pair_inputs(signatures[DEFAULT_SIGNATURE])
            return None
        except UsageError:
            pass
    warmup = latest_version(model_dir)[1] / WARMUP_FILE
    if warmup.is_file():
        return read_records(warmup)
    raise UsageError(f"nothing to measure the model in {model_dir} with: it is not shaped like "
                     "the NCF model (one user and one item input) and has no recorded requests; "
                     "pass --requests FILE (a TFRecord file of tensorflow.serving.PredictionLog "
                     f"records), or write them where TF Serving looks for warmup requests: "
                     f"{warmup}")


def build_traffic(options: TuningOptions, assets: "PreparedAssets | None",
                  records: Records | None) -> Traffic:
    """The workload and gate of the run (the model prepared or checked first)."""
    if records is None:
        return _eval_set_traffic(options, assets)
    return _recorded_traffic(options, assets, records)


def _eval_set_traffic(options: TuningOptions, assets: "PreparedAssets | None") -> Traffic:
    """The NCF tutorial's: eval pairs to the model's user and item inputs, HR/NDCG."""
    assets = check_assets(assets) if assets else prepare(options)
    model_dir = Path(assets.model_dir)
    inputs = pair_inputs(find_signature(str(model_dir), model_signatures(model_dir)))
    eval_rows = EvalRows.load(Path(assets.eval_path))
    batch_size = options.batch_size or DEFAULT_BATCH_SIZE
    workload = Workload.build(options.mode, options.objective, batch_size, options.iterations,
                              eval_rows, options.seed, options.latency_policy,
                              precision=options.precision, inputs=inputs)
    gate = AccuracyGate(eval_rows.sample_users(options.gate_users, options.seed),
                        options.min_hr, options.min_ndcg, inputs=inputs)
    return Traffic(ModelLocation(model_dir, MODEL_NAME), workload, gate, batch_size,
                   gate.study_attrs(), {"dataset": options.dataset})


def _recorded_traffic(options: TuningOptions, assets: "PreparedAssets | None",
                      records: Records) -> Traffic:
    """Any model's: the records' rows, checked by output agreement."""
    model_dir = _model_dir(options, assets)
    if assets is not None:
        check_assets(assets)
    elif is_foreign(model_dir):
        check_model(model_dir)
    else:  # autotune's NCF model, trained when missing
        model_dir = Path(prepare(options).model_dir)
    check_records(records, model_signatures(model_dir))
    batch_size = options.batch_size or records.largest
    workload = Workload.from_rows(options.mode, options.objective, records.rows(), batch_size,
                                  options.iterations, options.seed, options.latency_policy,
                                  precision=options.precision)
    gate = build_agreement_gate(records, model_dir, options.rtol, options.atol,
                                workload.batch_size, options.seed)
    name = model_dir.resolve().name
    return Traffic(ModelLocation(model_dir, name), workload, gate, batch_size,
                   {**gate.study_attrs(), StudyAttr.MODEL_NAME: name,
                    StudyAttr.REQUESTS: records.describe()},
                   {"model_name": name, "requests": records.digest})


def prepare(options: TuningOptions) -> "PreparedAssets":
    """The eval set and the NCF model of the data options, built when missing."""
    return prepare_assets(dataset=options.dataset, data_dir=options.data_dir,
                          model_dir=options.model_dir, epochs=options.epochs, seed=options.seed,
                          download=options.download, quiet=options.quiet)
