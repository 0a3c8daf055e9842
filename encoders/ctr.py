"""The supervised multi-task CTR model: BERT item tower, LSTM user tower, MMoE or shared bottom.

Tasks come from the logs: ``click`` always (MovieLens stores *like* there), ``purchase`` when
logged (ESMM: ``P(purchase) = P(click) * P(purchase | click)`` over all impressions, Ma et al.,
SIGIR 2018), ``rating`` when logged (regression). Position enters training as an additive logit
per task and is fixed to the top slot when serving.

``python -m encoders.ctr train --data shop --out DIR`` and
``python -m encoders.ctr eval --model DIR --data shop --json FILE``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from encoders.ctr_config import ARCHITECTURES, CTR_CACHE_VERSION, TASKS, CTRConfig
from encoders.device import deterministic_torch, resolve_device
from encoders.sequence import LSTMUserEncoder
from encoders.text import TEXT_ENCODERS, text_encoder_by_name
from encoders.training import tensor_batches, train_early_stopping
from simulators.errors import ConfigError, DataError, cli_entry
from simulators.logs import LoggedData, data_fingerprint, item_feature_matrix, user_feature_matrix
from simulators.metrics import log_loss, roc_auc
from simulators.steps import StepTable, build_steps
from simulators.storage import atomic_path, cache_dir, write_text_atomic


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


class CTRModel(nn.Module):
    """Multi-task model over (user, item, position).

    Args:
        item_table: ``(n_items, text_dim)`` frozen BERT embeddings.
        item_features: ``(n_items, F)`` side features (:func:`simulators.logs.item_feature_matrix`).
        n_user_features: width of the user feature matrix.
        n_positions: slots seen in the logs.
        tasks: the tasks, in head order.
        config: architecture options.
    """

    def __init__(
        self,
        item_table: np.ndarray,
        item_features: np.ndarray,
        n_user_features: int,
        n_positions: int,
        tasks: tuple[str, ...],
        config: CTRConfig,
    ):
        super().__init__()
        table = torch.as_tensor(np.asarray(item_table, dtype=np.float32))
        self.register_buffer("item_table", table, persistent=False)
        self.item_table: torch.Tensor
        side = torch.as_tensor(np.asarray(item_features, dtype=np.float32))
        self.register_buffer("item_features", side, persistent=False)
        self.item_features: torch.Tensor
        self.tasks = tasks
        dim, hidden = config.dim, config.hidden
        self.item_text = nn.Linear(table.shape[1], dim)
        self.item_side = nn.Linear(side.shape[1], dim)
        self.item_id = nn.Embedding(table.shape[0], dim) if config.item_id_embedding else None
        if self.item_id is not None:
            nn.init.normal_(self.item_id.weight, std=0.01)
        self.user_history = LSTMUserEncoder(table, projection_dim=dim, hidden_dim=dim)
        self.user_features = nn.Linear(n_user_features, dim) if n_user_features else None
        width = 3 * dim
        self.architecture = config.architecture
        if config.architecture == "mmoe":
            self.experts = nn.ModuleList(
                nn.Sequential(nn.Linear(width, hidden), nn.ReLU()) for _ in range(config.experts)
            )
            self.gates = nn.ModuleList(nn.Linear(width, config.experts) for _ in tasks)
        else:
            self.bottom = nn.Sequential(nn.Linear(width, hidden), nn.ReLU())
        self.towers = nn.ModuleList(
            nn.Sequential(nn.Linear(hidden, hidden // 2), nn.ReLU(), nn.Linear(hidden // 2, 1)) for _ in tasks
        )
        self.position_logit = nn.Parameter(torch.zeros(len(tasks), max(n_positions, 1)))

    def user_vectors(self, history: torch.Tensor, user_features: torch.Tensor) -> torch.Tensor:
        """``(B, dim)`` from ``history (B, H)`` (-1 pad) and ``user_features (B, F)``."""
        vector = self.user_history(history, history >= 0)
        if self.user_features is not None:
            vector = vector + self.user_features(user_features)
        return vector

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """``(..., dim)`` for catalog rows ``items``."""
        vectors = self.item_text(self.item_table[items]) + self.item_side(self.item_features[items])
        return vectors if self.item_id is None else vectors + self.item_id(items)

    def forward(
        self, user: torch.Tensor, items: torch.Tensor, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Task logits ``(B, K, n_tasks)`` for ``user (B, dim)`` and ``items (B, K)``; without
        ``positions`` every item is scored at the top slot (serving)."""
        item = self.item_vectors(items.clamp(min=0))
        u = user[:, None, :].expand_as(item)
        x = torch.cat([u, item, u * item], dim=-1)
        if self.architecture == "mmoe":
            expert_out = torch.stack([expert(x) for expert in self.experts], dim=-2)  # (B, K, E, hidden)
            mixed = [(torch.softmax(gate(x), dim=-1)[..., None] * expert_out).sum(-2) for gate in self.gates]
        else:
            shared = self.bottom(x)
            mixed = [shared for _ in self.tasks]
        logits = torch.cat([tower(h) for tower, h in zip(self.towers, mixed, strict=True)], dim=-1)
        position = torch.zeros_like(items) if positions is None else positions
        return logits + self.position_logit.T[position.clamp(min=0, max=self.position_logit.shape[1] - 1)]

    def probabilities(self, logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-task predictions: ``click`` = P(click), ``purchase`` = P(click) * P(purchase | click)
        (ESMM), ``purchase_given_click``, ``rating`` (a value)."""
        out: dict[str, torch.Tensor] = {}
        for index, task in enumerate(self.tasks):
            if task == "rating":
                out["rating"] = logits[..., index]
            else:
                out[task] = torch.sigmoid(logits[..., index])
        if "purchase" in out and "click" in out:  # ESMM; a purchase-only model predicts it directly
            out["purchase_given_click"] = out["purchase"]
            out["purchase"] = out["click"] * out["purchase_given_click"]
        return out

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Sum over tasks of the mean loss on shown slots."""
        user = self.user_vectors(batch["history"], batch["user_features"])
        items = batch["items"]
        positions = torch.arange(items.shape[1], device=items.device).expand_as(items)
        predicted = self.probabilities(self(user, items, positions))
        shown = items >= 0
        total = torch.zeros((), device=items.device)
        for task, value in predicted.items():
            if task == "purchase_given_click":
                continue
            if task == "rating":
                rated = shown & ~torch.isnan(batch["rating"])
                if bool(rated.any()):
                    total = total + F.mse_loss(value[rated], batch["rating"][rated]) / 4.0
                continue
            p = value.clamp(1e-6, 1 - 1e-6)
            total = total + F.binary_cross_entropy(p[shown], batch[task][shown].float())
        return total


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
            for batch in tensor_batches(data, 4096):
                user = self.model.user_vectors(batch["history"], batch["user_features"])
                items = batch["items"]
                positions = (
                    torch.arange(items.shape[1], device=device).expand_as(items)
                    if at_logged_positions
                    else None
                )
                for task, value in self.model.probabilities(self.model(user, items, positions)).items():
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
            for start in range(0, len(users), batch):
                rows = slice(start, start + batch)
                h = torch.from_numpy(history[rows]).to(device)
                f = torch.from_numpy(self.user_features[users[rows]]).to(device)
                offered = torch.from_numpy(items[rows]).to(device)
                predicted = model.probabilities(model(model.user_vectors(h, f), offered))
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
            np.save(handle, self.model.item_features.cpu().numpy())
        with atomic_path(folder / "model.pt") as tmp:
            torch.save(self.model.state_dict(), tmp)
        meta = {"config": asdict(self.config), "tasks": list(self.tasks), "history": self.history}
        write_text_atomic(folder / "config.json", json.dumps(meta, indent=2) + "\n")


def item_table(logs: LoggedData, config: CTRConfig) -> np.ndarray:
    """The frozen text embeddings of the catalog."""
    return text_encoder_by_name(config.text_encoder, config.device).encode(
        logs.items["text"].tolist(), progress=True
    )


def train_ctr(
    logs: LoggedData, config: CTRConfig | None = None, embeddings: np.ndarray | None = None
) -> TrainedCTR:
    """Train on the time split's train part with early stopping on its validation part."""
    config = config or CTRConfig()
    tasks = resolve_tasks(config, logs)
    device = resolve_device(config.device)
    table = item_table(logs, config) if embeddings is None else embeddings
    split = logs.split_by_time(0.1, 0.1)
    train, valid = (build_steps(part, config.history_length, history_from=logs) for part in split[:2])
    features = user_feature_matrix(logs.users)
    side = item_feature_matrix(logs, split.train)
    start = time.perf_counter()
    with deterministic_torch(config.seed):
        model = CTRModel(table, side, features.shape[1], train.items.shape[1], tasks, config).to(device)
        train_data, valid_data = _tensors(train, features, device), _tensors(valid, features, device)
        losses = train_early_stopping(
            model, train_data, valid_data, epochs=config.epochs, batch_size=config.batch_size,
            learning_rate=config.learning_rate, weight_decay=config.weight_decay, patience=config.patience,
            seed=config.seed, description=f"train CTR ({'+'.join(tasks)})",
        )  # fmt: skip
    history = {
        "valid_loss": losses,
        "epochs": len(losses),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return TrainedCTR(model, config, tasks, features, history)


def load_or_train_ctr(
    logs: LoggedData, config: CTRConfig | None = None, embeddings: np.ndarray | None = None
) -> TrainedCTR:
    """The cached CTR model for ``logs`` and ``config``, trained (and cached) on first use."""
    config = config or CTRConfig()
    identity = json.dumps({**asdict(config), "device": None}, sort_keys=True)
    key = hashlib.sha256(f"{CTR_CACHE_VERSION}|{data_fingerprint(logs)}|{identity}".encode()).hexdigest()
    folder = cache_dir("ctr", key[:16])
    if (folder / "config.json").is_file():  # written last by save()
        return load_ctr(folder, logs, config.device)
    trained = train_ctr(logs, config, embeddings)
    trained.save(folder)
    return trained


def load_ctr(folder: Path, logs: LoggedData, device: str = "auto") -> TrainedCTR:
    """A model saved by :meth:`TrainedCTR.save`, for the catalog of ``logs``."""
    try:
        meta = json.loads((folder / "config.json").read_text())
        config = CTRConfig(**{**meta["config"], "tasks": tuple(meta["config"]["tasks"]), "device": device})
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


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``train`` and ``eval`` subcommands (see the module docstring)."""
    from simulators.datasets import load_logs

    parser = argparse.ArgumentParser(prog="python -m encoders.ctr", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train on logs and save the model")
    train.add_argument("--data", required=True)
    train.add_argument("--out", type=Path, required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--epochs", type=int, default=CTRConfig.epochs)
    train.add_argument("--architecture", choices=ARCHITECTURES, default="mmoe")
    train.add_argument("--text-encoder", choices=list(TEXT_ENCODERS), default="minilm")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    evaluate = commands.add_parser("eval", help="score a saved model on the test split")
    evaluate.add_argument("--model", type=Path, required=True)
    evaluate.add_argument("--data", required=True)
    evaluate.add_argument("--json", type=Path, required=True)
    evaluate.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    args = parser.parse_args(argv)
    logs = load_logs(args.data)
    if args.command == "train":
        config = CTRConfig(
            architecture=args.architecture,
            seed=args.seed,
            epochs=args.epochs,
            text_encoder=args.text_encoder,
            device=args.device,
        )
        if args.epochs < 1:
            raise ConfigError("--epochs must be >= 1")
        trained = train_ctr(logs, config)
        trained.save(args.out)
        print(json.dumps({"tasks": list(trained.tasks), **trained.history}, indent=2))
        return
    trained = load_ctr(args.model, logs, args.device)
    scores = evaluate_ctr(trained, logs)
    single = {}
    for task in trained.tasks:
        alone = train_ctr(logs, replace(trained.config, tasks=(task,)))
        single[task] = evaluate_ctr(alone, logs)[task]
    report: dict[str, Any] = {"tasks": {}}
    for task, figures in scores.items():
        entry = dict(figures)
        key = "auc" if "auc" in figures else "rmse"
        entry[f"{key}_single_task"] = single[task][key]
        report["tasks"][task] = entry
    if logs.origin is not None and logs.source.startswith("shop("):
        report["ground_truth_click_auc"] = _shop_ground_truth_auc(logs)
    write_text_atomic(args.json, json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


def _shop_ground_truth_auc(logs: LoggedData) -> float:
    """Click AUC of the shop's true model on the same test rows. The CLI alone reaches up to
    the simulator layer for it (lazily); the model and its training never do."""
    from simulators.datasets.shop import shop_config_of
    from simulators.fit import replay_probabilities
    from simulators.shop import ShopWorld

    test = build_steps(logs.split_by_time(0.1, 0.1).test, 20, history_from=logs)
    truth, _ = replay_probabilities(test, ShopWorld(shop_config_of(logs)))
    return roc_auc(test.clicks[test.slot_mask], truth[test.slot_mask])


if __name__ == "__main__":
    main()
