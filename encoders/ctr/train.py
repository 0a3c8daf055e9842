"""Training, caching, loading and scoring the multi-task CTR model (:mod:`encoders.ctr.model`).

Used three ways: the ``ctr`` baseline, the environments' candidate generator and the warm start
of the RL policy's towers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from encoders.ctr.config import TASKS, CTRConfig, ctr_cache_key, warm_start_identity
from encoders.ctr.model import CTRModel
from encoders.device import deterministic_torch, resolve_device
from encoders.optimiser import OptimiserConfig
from encoders.text import catalog_vectors
from encoders.training import tensor_batches, train_early_stopping
from simulators.core.errors import DataError
from simulators.core.metrics import log_loss, roc_auc
from simulators.core.storage import (
    MANIFEST,
    atomic_path,
    cache_dir,
    load_or_build,
    write_text_atomic,
)
from simulators.data.features import item_feature_matrix, user_feature_matrix
from simulators.data.logs import LoggedData
from simulators.data.steps import StepTable, build_steps

CTR_FILES = ("user_features.npy", "item_features.npy", "model.pt", "config.json")
"""What :meth:`TrainedCTR.save` writes (a cached model's manifest covers them)."""


def supported_tasks(logs: LoggedData) -> tuple[str, ...]:
    """The tasks these logs carry labels for."""
    columns = logs.interactions.columns
    return tuple(t for t in TASKS if t == "click" or t in columns)


def resolve_tasks(config: CTRConfig, logs: LoggedData) -> tuple[str, ...]:
    """The configured tasks, checked against the labels the logs carry."""
    available = supported_tasks(logs)
    if not config.tasks:
        return available
    missing = [t for t in config.tasks if t not in available]
    if missing:
        raise DataError(
            f"logs {logs.source} have no label for task(s) {missing} (they carry {list(available)})"
        )
    return tuple(config.tasks)


def _tensors(steps: StepTable, user_features: np.ndarray, device: torch.device) -> dict[str, torch.Tensor]:
    data = {
        "history": torch.from_numpy(steps.history[steps.session]),
        "user_features": torch.from_numpy(user_features[steps.user]),
        "items": torch.from_numpy(steps.items),
        "click": torch.from_numpy(steps.clicks.astype(np.int64)),
        "purchase": torch.from_numpy(steps.purchases.astype(np.int64)),
        "rating": torch.from_numpy(steps.ratings),
    }
    return {key: value.to(device) for key, value in data.items()}


@dataclass
class TrainedCTR:
    """A trained model with everything needed to score and to save it."""

    model: CTRModel
    config: CTRConfig
    tasks: tuple[str, ...]
    user_features: np.ndarray
    """``(n_users, F)`` the users' feature matrix used in training."""
    history: dict[str, Any]
    """Validation losses per epoch and timing."""

    def predict(self, steps: StepTable, at_logged_positions: bool = False) -> dict[str, np.ndarray]:
        """Per-task predictions ``(S, K)`` for logged steps (serving position unless asked)."""
        device = next(self.model.parameters()).device
        data = _tensors(steps, self.user_features, device)
        chunks: dict[str, list[np.ndarray]] = {}
        self.model.eval()
        with torch.no_grad():
            catalog = self.model.item_tower.catalog()
            for batch in tensor_batches(data, 4096):
                user = self.model.user_vectors(batch["history"], batch["user_features"])
                items = batch["items"]
                positions = (
                    torch.arange(items.shape[1], device=device).expand_as(items)
                    if at_logged_positions
                    else None
                )
                for task, value in self.model.probabilities(
                    self.model(user, items, positions, catalog)
                ).items():
                    chunks.setdefault(task, []).append(value.cpu().numpy())
        return {task: np.concatenate(parts) for task, parts in chunks.items()}

    def top_n(
        self, history: np.ndarray, users: np.ndarray, items: np.ndarray, n: int, batch: int = 256
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Ranking stage of candidate generation: of each user's ``items (U, R)`` (catalog
        rows), the ``n`` of highest predicted click probability, best first, with every task's
        prediction for them (``(U, n)`` each, serving position). ``users (U,)`` are user rows
        and ``history (U, H)`` their clicked items (-1 pad)."""
        model = self.model
        device = next(model.parameters()).device
        n = min(n, items.shape[1])
        top = np.empty((len(users), n), dtype=np.int64)
        chunks: dict[str, list[np.ndarray]] = {}
        model.eval()
        with torch.no_grad():
            # The item tower once over the catalog: run per (user, item) pair it was most of the cost.
            catalog = model.item_tower.catalog()
            for start in range(0, len(users), batch):
                rows = slice(start, start + batch)
                h = torch.from_numpy(history[rows]).to(device)
                f = torch.from_numpy(self.user_features[users[rows]]).to(device)
                offered = torch.from_numpy(items[rows]).to(device)
                predicted = model.probabilities(model(model.user_vectors(h, f), offered, catalog=catalog))
                best = torch.topk(predicted["click"], n, dim=1).indices  # sorted, best first
                top[rows] = torch.gather(offered, 1, best).cpu().numpy()
                for task, value in predicted.items():
                    chunks.setdefault(task, []).append(torch.gather(value, 1, best).cpu().numpy())
        return top, {task: np.concatenate(parts) for task, parts in chunks.items()}

    def save(self, folder: Path) -> None:
        """``model.pt`` (state_dict), ``config.json``, ``user_features.npy`` and ``item_features.npy``, atomically."""
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / "user_features.npy") as tmp, tmp.open("wb") as handle:
            np.save(handle, self.user_features)
        with atomic_path(folder / "item_features.npy") as tmp, tmp.open("wb") as handle:
            np.save(handle, self.model.item_tower.item_features.cpu().numpy())
        with atomic_path(folder / "model.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        meta = {"config": asdict(self.config), "tasks": list(self.tasks), "history": self.history}
        write_text_atomic(folder / "config.json", json.dumps(meta, indent=2) + "\n")


def item_table(logs: LoggedData, config: CTRConfig) -> np.ndarray:
    """The frozen text embeddings of the catalog (hashed ids or attributes when it has no text)."""
    return catalog_vectors(logs, config.text_encoder, config.device)


def train_ctr(
    logs: LoggedData,
    config: CTRConfig | None = None,
    embeddings: np.ndarray | None = None,
    init: Path | None = None,
) -> TrainedCTR:
    """Train on the time split's train part with early stopping on its validation part.

    ``init``: a model folder (:meth:`TrainedCTR.save`) whose parameters start the training (a warm
    start: last week's model on this week's logs); it must share the architecture, ``dim`` and
    feature layout (and the catalog, with ``item_id_embedding``)."""
    config = config or CTRConfig()
    start_state = _init_state(init) if init is not None else None
    logs.require_positive_feedback("train a CTR model on")
    tasks = resolve_tasks(config, logs)
    device = resolve_device(config.device)
    table = item_table(logs, config) if embeddings is None else embeddings
    split = logs.split_by_time(0.1, 0.1)
    train, valid = (build_steps(part, config.history_length, history_from=logs) for part in split[:2])
    features = user_feature_matrix(logs.users)
    side = item_feature_matrix(logs, split.train)
    start = time.perf_counter()
    with deterministic_torch(config.optim.seed):
        model = CTRModel(table, side, features.shape[1], train.items.shape[1], tasks, config)
        if start_state is not None:
            try:
                model.load_state_dict(start_state)
            except RuntimeError as err:
                raise DataError(
                    f"{init}: cannot warm-start the CTR model from it ({str(err).splitlines()[0]}): "
                    "another architecture, dim, feature layout or catalog?"
                ) from None
        model = model.to(device)
        train_data, valid_data = _tensors(train, features, device), _tensors(valid, features, device)
        losses = train_early_stopping(
            model, train_data, valid_data, config.optim, description=f"train CTR ({'+'.join(tasks)})"
        )
    history = {
        "valid_loss": losses,
        "epochs": len(losses),
        "train_seconds": round(time.perf_counter() - start, 1),
        "warm_start": None if init is None else str(init),
    }
    return TrainedCTR(model, config, tasks, features, history)


def _init_state(init: Path) -> dict[str, torch.Tensor]:
    """The parameters saved in the model folder ``init`` (one clear error when it is not one)."""
    try:
        state: dict[str, torch.Tensor] = torch.load(init / "model.pt", map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as err:
        raise DataError(f"{init}: not a CTR model folder to warm-start from ({err})") from None
    return state


def load_or_train_ctr(
    logs: LoggedData,
    config: CTRConfig | None = None,
    embeddings: np.ndarray | None = None,
    init: Path | None = None,
) -> TrainedCTR:
    """The cached CTR model for ``logs``, ``config`` and the warm start ``init`` (see
    :func:`train_ctr`), trained (and cached) on first use."""
    config = config or CTRConfig()
    folder = cache_dir("ctr", ctr_key(logs, config, init))

    def build() -> TrainedCTR:
        trained = train_ctr(logs, config, embeddings, init)
        trained.save(folder)
        return trained

    files = [folder / name for name in CTR_FILES]
    return load_or_build(
        "CTR model", folder / MANIFEST, files, lambda: load_ctr(folder, logs, config.device), build
    )


def ctr_key(logs: LoggedData, config: CTRConfig | None = None, init: Path | None = None) -> str:
    """The identity of the CTR model trained on ``logs`` with ``config`` from ``init``: the starting
    model by its content, not its path (:func:`~encoders.ctr.config.ctr_cache_key`)."""
    start = None if init is None else warm_start_identity(init)
    return ctr_cache_key(logs.fingerprint, config or CTRConfig(), start)


def load_ctr(folder: Path, logs: LoggedData, device: str = "auto") -> TrainedCTR:
    """A model saved by :meth:`TrainedCTR.save`, for the catalog of ``logs``."""
    try:
        meta = json.loads((folder / "config.json").read_text())
        raw = meta["config"]
        config = CTRConfig(
            **{
                **raw,
                "tasks": tuple(raw["tasks"]),
                "device": device,
                "optim": OptimiserConfig(**raw["optim"]),
            }
        )
        features = np.load(folder / "user_features.npy")
        side = np.load(folder / "item_features.npy")
        state = torch.load(folder / "model.pt", map_location="cpu", weights_only=True)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise DataError(f"{folder}: not a CTR model folder ({err})") from None
    tasks = tuple(meta["tasks"])
    if len(side) != logs.n_items:
        raise DataError(f"{folder}: model has {len(side)} items, these logs' catalog {logs.n_items}")
    table = item_table(logs, config)
    n_positions = int(state["position_logit"].shape[1])
    model = CTRModel(table, side, features.shape[1], n_positions, tasks, config)
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        raise DataError(
            f"{folder}: model does not fit these logs' catalog ({str(err).splitlines()[0]})"
        ) from None
    return TrainedCTR(model.to(resolve_device(device)), config, tasks, features, meta.get("history", {}))


def evaluate_ctr(trained: TrainedCTR, logs: LoggedData) -> dict[str, dict[str, float]]:
    """AUC and log loss (RMSE for ratings) per task on the test split, at logged positions."""
    test = build_steps(logs.split_by_time(0.1, 0.1).test, trained.config.history_length, history_from=logs)
    predicted = trained.predict(test, at_logged_positions=True)
    shown = test.slot_mask
    labels = {"click": test.clicks, "purchase": test.purchases}
    out: dict[str, dict[str, float]] = {}
    for task in trained.tasks:
        if task == "rating":
            rated = shown & ~np.isnan(test.ratings)
            out[task] = {"rmse": float(np.sqrt(np.mean((predicted[task][rated] - test.ratings[rated]) ** 2)))}
        else:
            y, p = labels[task][shown], predicted[task][shown]
            out[task] = {"auc": roc_auc(y, p), "logloss": log_loss(y, p)}
    return out
