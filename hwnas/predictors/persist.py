"""Save and load predictors: XGBoost's native UBJSON model files plus one JSON sidecar.

The sidecar holds the schema version, hwnas and xgboost versions, feature names, estimator
parameters and feature ranges, the hardware profile, the fingerprint of the machine that
produced the training data, the training-data hash, the composition parts (fixed-part
latencies, overhead models, profiled choices) and the metrics. Nothing is pickled, and a
pickle handed to `load_*` is refused without being read past its first bytes.

Latency predictors live in ``<cache>/predictors/<hw>/<arch key>/latency``; accuracy predictors
in ``<cache>/predictors/accuracy/<model fingerprint>/<tasks>``.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

import numpy as np

import hwnas
from hwnas.errors import InputError
from hwnas.predictors.baselines import WholeNetLatency
from hwnas.predictors.composed import ComposedLatency, Overhead
from hwnas.predictors.data import Primary
from hwnas.predictors.estimators import AccuracyPredictor, LatencyPredictor, _XGBEnsemble
from hwnas.predictors.features import LAYER_FEATURES, subnet_feature_names
from hwnas.predictors.train import BundleMeta, LatencyBundle
from hwnas.supernet.arch import ArchInfo
from hwnas.supernet.space import SearchSpace

SCHEMA_VERSION = 1
SIDECAR = "predictor.json"
PICKLE_SUFFIXES = (".pkl", ".pickle", ".joblib")


class FingerprintMismatchWarning(UserWarning):
    """A predictor was trained on measurements from another machine or software stack."""


def latency_dir(hw: str, arch_key: str) -> Path:
    from hwnas.paths import cache_dir
    return cache_dir() / "predictors" / hw / arch_key / "latency"


def accuracy_dir(model_fp: str, tasks: list[str]) -> Path:
    from hwnas.paths import cache_dir
    return cache_dir() / "predictors" / "accuracy" / model_fp / "+".join(sorted(tasks))


# ---- one estimator ---------------------------------------------------------------------------
EstimatorDict = TypedDict("EstimatorDict", {
    "class": str,  # LatencyPredictor | AccuracyPredictor
    "params": dict[str, Any],  # get_params(): the estimator's own arguments
    "members": list[str],  # the members' UBJSON files, next to the sidecar
    "n_features_in": int,
    "n_train": int,
    "domain_min": list[float],
    "domain_max": list[float],
})
"""One saved estimator as its sidecar entry holds it."""


def save_estimator(est: _XGBEnsemble, folder: Path, stem: str) -> EstimatorDict:
    files = []
    for i, m in enumerate(est.members_):
        name = f"{stem}_m{i}.ubj"
        m.save_model(str(folder / name))
        files.append(name)
    params = est.get_params()
    return {"class": type(est).__name__, "params": params, "members": files,
            "n_features_in": int(est.n_features_in_), "n_train": est.n_train_,
            "domain_min": est.domain_min_.tolist(), "domain_max": est.domain_max_.tolist()}


def load_estimator(folder: Path, d: EstimatorDict) -> _XGBEnsemble:
    from xgboost import XGBRegressor

    cls = {"LatencyPredictor": LatencyPredictor, "AccuracyPredictor": AccuracyPredictor}
    params = dict(d["params"])
    if params.get("monotone") is not None:
        params["monotone"] = tuple(params["monotone"])
    est = cls[d["class"]](**params)
    members = []
    for name in d["members"]:
        if not isinstance(name, str) or "/" in name or "\\" in name or name.startswith("."):
            raise InputError(f"predictor sidecar in {folder}: member {str(name)[:60]!r} is not "
                             "a file name in its folder; retrain with `hwnas predictors train`")
        m = XGBRegressor()
        m.load_model(str(_checked(folder / name)))
        members.append(m)
    est.members_ = members
    est.n_features_in_ = int(d["n_features_in"])
    est.n_train_ = int(d["n_train"])
    est.domain_min_ = np.array(d["domain_min"], dtype=float)
    est.domain_max_ = np.array(d["domain_max"], dtype=float)
    return est


def _checked(path: Path) -> Path:
    if not _plain_member(path):
        raise InputError(f"predictor sidecar: member file name {path.name!r} is not a plain "
                         "file name; retrain with `hwnas predictors train`")
    refuse_pickle(path)
    if not path.is_file():
        raise InputError(f"predictor file {path} is missing; retrain with "
                         "`hwnas predictors train`")
    with open(path, "rb") as f:
        head = f.read(1)
    if head != b"{":  # UBJSON and JSON models both open an object
        raise InputError(f"predictor file {path}: not an XGBoost model (UBJSON or JSON); "
                         "retrain with `hwnas predictors train`")
    return path


def _plain_member(path: Path) -> bool:
    return path.name not in ("", ".", "..") and path.name.endswith((".ubj", ".json"))


def is_pickle(head: bytes) -> bool:
    """Whether `head` (a file's first bytes) is a Python pickle of any protocol, 0 included.
    `pickletools.genops` only decodes opcodes: nothing is imported or run."""
    import pickletools

    if len(head) >= 2 and head[0] == 0x80 and head[1] <= 5:
        return True  # protocols 2..5 open with PROTO
    try:
        for op, _, _ in pickletools.genops(head):
            if op.name == "STOP":
                return True
    except Exception:  # noqa: BLE001 (not a pickle, or cut off: decided by the opcodes seen)
        return False
    return False


def refuse_pickle(path: Path) -> None:
    """Refuse anything that is, or is named like, a pickle (every protocol, 0 included)."""
    if path.suffix in PICKLE_SUFFIXES:
        raise InputError(f"{path}: refusing to load a pickle; hwnas predictors are XGBoost "
                         "UBJSON files plus a JSON sidecar (retrain with `hwnas predictors "
                         "train`)")
    if path.is_file():
        with open(path, "rb") as f:
            head = f.read(1 << 16)
        if is_pickle(head):
            raise InputError(f"{path}: this file is a Python pickle; refusing to load it. "
                             "hwnas predictors are XGBoost UBJSON plus a JSON sidecar")


@contextmanager
def sidecar_fields(sidecar: Path) -> Iterator[None]:
    """Turn a sidecar field that is missing or of the wrong kind, or a model file XGBoost
    cannot read, into one `InputError` naming the file."""
    try:
        yield
    except InputError:
        raise
    except Exception as e:
        if type(e).__name__ == "XGBoostError":
            first = " ".join(str(e).split("Stack trace")[0].split())[:160]
            raise InputError(f"predictor in {sidecar.parent}: XGBoost cannot read a model file "
                             f"({first}); retrain with `hwnas predictors train`") from None
        if not isinstance(e, KeyError | TypeError | ValueError | AttributeError | IndexError):
            raise
        what = f"field {e}" if isinstance(e, KeyError) else " ".join(str(e).split())[:160]
        raise InputError(f"predictor sidecar {sidecar}: missing or invalid {what}; retrain with "
                         "`hwnas predictors train`") from None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=_default))
    tmp.replace(path)


def _default(o: object) -> object:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray | tuple | set):
        return list(o)
    raise TypeError(type(o).__name__)


def _header(kind: str, features: list[str]) -> dict[str, Any]:
    import xgboost

    return {"schema_version": SCHEMA_VERSION, "kind": kind, "hwnas_version": hwnas.__version__,
            "xgboost_version": xgboost.__version__, "created": time.time(),
            "feature_names": features}


def read_sidecar(folder_or_file: Path, kind: str) -> tuple[Path, dict[str, Any]]:
    p = Path(folder_or_file)
    refuse_pickle(p)
    sidecar = p / SIDECAR if p.is_dir() else p
    if not sidecar.is_file():
        raise InputError(f"no trained {kind} predictor at {p}; train one with "
                         "`hwnas predictors train`")
    from hwnas.safe_io import read_json_object

    refuse_pickle(sidecar)
    data = read_json_object(sidecar, "predictor sidecar")
    if data.get("kind") != kind:
        raise InputError(f"{sidecar}: holds a '{data.get('kind')}' predictor, not '{kind}'")
    if data.get("schema_version") != SCHEMA_VERSION:
        raise InputError(f"{sidecar}: schema version {data.get('schema_version')}, this hwnas "
                         f"reads {SCHEMA_VERSION}; retrain with `hwnas predictors train`")
    if data.get("hwnas_version") != hwnas.__version__:
        warnings.warn(f"{sidecar}: saved by hwnas {data.get('hwnas_version')}, loading with "
                      f"{hwnas.__version__}", UserWarning, stacklevel=2)
    return sidecar.parent, data


# ---- latency bundle --------------------------------------------------------------------------
def save_latency(bundle: LatencyBundle, folder: Path, hw_profile: dict[str, Any],
                 model: str, metrics: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    comp = bundle.composed
    data = _header("latency", list(LAYER_FEATURES))
    data.update({
        "hw": bundle.hw, "hw_profile": hw_profile, "model": model, "arch": bundle.arch.to_dict(),
        "arch_key": bundle.arch.key(), "dtype": bundle.dtype, "primary": bundle.primary.to_dict(),
        "fingerprint": bundle.meta.get("fingerprint", {}),
        "training_data_hash": bundle.meta.get("data_hash", ""),
        "statistic": bundle.meta.get("statistic", "median"),
        "n_layer_samples": bundle.meta.get("n_layer_samples"),
        "n_train_subnets": bundle.meta.get("n_train_subnets"),
        "layers": save_estimator(_ensemble(comp.layer_model), folder, "layers"),
        "fixed_ms": comp.fixed_ms,
        "overheads": {k: v.to_dict() for k, v in comp.overheads.items()},
        "seen_choices": sorted(comp.seen_choices or ()),
        "metrics": metrics or {},
    })
    if bundle.wholenet is not None:
        data["wholenet"] = {name: save_estimator(_ensemble(m), folder,
                                                 f"wholenet_{name.replace('@', '_')}")
                            for name, m in bundle.wholenet.models_.items()}
        data["wholenet_domain"] = bundle.wholenet.domain_.tolist()
    _write_json(folder / SIDECAR, data)
    return folder


def load_latency(folder: Path, expected_fingerprint: str | None = None,
                 strict: bool = False) -> LatencyBundle:
    """Load a saved latency predictor. If `expected_fingerprint` (a `Fingerprint.key()`)
    differs from the training data's, warn (or refuse when `strict`)."""
    folder, d = read_sidecar(folder, "latency")
    with sidecar_fields(folder / SIDECAR):
        return _load_latency(folder, d, expected_fingerprint, strict)


def _load_latency(folder: Path, d: dict[str, Any], expected_fingerprint: str | None,
                  strict: bool) -> LatencyBundle:
    check_fingerprint(d, expected_fingerprint, strict)
    arch = ArchInfo(**d["arch"])
    primary = Primary.from_dict(d["primary"])
    layer = load_estimator(folder, d["layers"])
    comp = ComposedLatency(arch, d["dtype"], layer, {k: float(v) for k, v in d["fixed_ms"].items()},
                           primary, seen_choices={tuple(c) for c in d["seen_choices"]},
                           overheads={k: Overhead.from_dict(v) for k, v in d["overheads"].items()})
    wholenet = None
    if "wholenet" in d:
        space = SearchSpace.default(arch)
        wholenet = WholeNetLatency(space, d["dtype"], primary, LatencyPredictor)
        wholenet.models_ = {k: load_estimator(folder, v) for k, v in d["wholenet"].items()}
        wholenet.domain_ = np.array(d["wholenet_domain"], dtype=float)
    meta: BundleMeta = {"fingerprint": d.get("fingerprint"),
                        "training_data_hash": d.get("training_data_hash"),
                        "n_layer_samples": d.get("n_layer_samples"),
                        "statistic": d.get("statistic"),
                        "n_train_subnets": d.get("n_train_subnets"),
                        "metrics": d.get("metrics"), "hw_profile": d.get("hw_profile"),
                        "model": d.get("model")}
    return LatencyBundle(d["hw"], arch, d["dtype"], primary, comp, wholenet, meta)


def _ensemble(model: object) -> _XGBEnsemble:
    if not isinstance(model, _XGBEnsemble):
        raise TypeError(f"only XGBoost layer models are saved, got {type(model).__name__}")
    return model


def check_fingerprint(d: dict[str, Any], expected: str | None, strict: bool) -> None:
    have = (d.get("fingerprint") or {}).get("key")
    if expected is None or have is None or have == expected:
        return
    msg = (f"this predictor was trained on measurements from machine fingerprint {have}, but "
           f"this machine is {expected}; its predictions may not hold here. Profile this "
           f"machine (`hwnas profile --hw {d.get('hw')} --model {d.get('model')}`) and retrain")
    if strict:
        raise InputError(msg)
    warnings.warn(msg, FingerprintMismatchWarning, stacklevel=3)


# ---- accuracy --------------------------------------------------------------------------------
def save_accuracy(est: AccuracyPredictor, folder: Path, *, model: str, model_fp: str,
                  tasks: list[str], space: SearchSpace, data_hash: str,
                  metrics: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = _header("accuracy", list(subnet_feature_names(space)))
    data.update({"model": model, "model_fingerprint": model_fp, "tasks": sorted(tasks),
                 "arch": space.arch.to_dict(), "width_choices": list(space.width_choices),
                 "kv_choices": list(space.kv_choices), "training_data_hash": data_hash,
                 "estimator": save_estimator(est, folder, "accuracy"), "metrics": metrics or {}})
    _write_json(folder / SIDECAR, data)
    return folder


def load_accuracy(folder: Path, model_fp: str | None = None
                  ) -> tuple[AccuracyPredictor, dict[str, Any]]:
    """Refuses a predictor trained on another model's weights (fingerprint)."""
    folder, d = read_sidecar(folder, "accuracy")
    with sidecar_fields(folder / SIDECAR):
        return _load_accuracy(folder, d, model_fp)


def _load_accuracy(folder: Path, d: dict[str, Any], model_fp: str | None
                   ) -> tuple[AccuracyPredictor, dict[str, Any]]:
    if model_fp is not None and d["model_fingerprint"] != model_fp:
        raise InputError(f"{folder}: this accuracy predictor was trained on model fingerprint "
                         f"{d['model_fingerprint']}, not {model_fp}; retrain it with "
                         "`hwnas predictors train`")
    est = load_estimator(folder, d["estimator"])
    if not isinstance(est, AccuracyPredictor):
        raise InputError(f"{folder}: the sidecar names a {type(est).__name__}, not an "
                         "AccuracyPredictor; retrain with `hwnas predictors train`")
    return est, d
