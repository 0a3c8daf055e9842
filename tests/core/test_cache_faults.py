"""Fault injection on every kind of cached artefact: a truncated, bit-flipped or replaced file,
or a lost manifest, is detected, reported in one line and rebuilt to the same content."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from encoders.ctr.config import CTRConfig
from encoders.ctr.train import load_or_train_ctr
from encoders.optimiser import OptimiserConfig
from encoders.text import TextEncoder, TextEncoderConfig
from envs.candidates import PopularitySimilaritySource, cached_top_n, candidates_key
from envs.world import protected_items
from simulators.core.storage import MANIFEST, cache_dir, file_digest
from simulators.datasets.shop import SHOP_FILES, read_folder, shop_folder
from simulators.fit.cache import load_or_fit, simulator_folder
from simulators.fit.config import FitConfig, ResponseNetConfig
from tests.conftest import SMALL_SHOP

pytestmark = pytest.mark.usefixtures("own_cache")  # these tests break cache entries on purpose


def newest(paths: Iterable[Path]) -> Path:
    """The most recently written of ``paths``."""
    return max(paths, key=lambda path: path.stat().st_mtime_ns)


def truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: max(len(path.read_bytes()) // 2, 1)])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def overwrite(path: Path) -> None:
    path.write_bytes(b"not what was cached")


def lose_manifest(path: Path) -> None:
    manifest = (
        path.parent / MANIFEST if (path.parent / MANIFEST).is_file() else path.with_suffix(".manifest.json")
    )
    if not manifest.is_file():
        manifest = path.with_name(f"{path.stem}.manifest.json")
    manifest.unlink()


FAULTS: dict[str, Callable[[Path], None]] = {
    "truncated": truncate, "bit-flipped": flip, "replaced": overwrite, "manifest lost": lose_manifest,
}  # fmt: skip
CONFIG = replace(SMALL_SHOP, seed=11)
FIT = FitConfig(
    text_encoder="hashing",
    net=replace(ResponseNetConfig(), optim=replace(ResponseNetConfig().optim, epochs=1)),
    random_effects=False,
    cross_fit_folds=0,
)
"""The cheapest fit: these tests break its cache entry, not the fit."""


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_shop_folder_is_regenerated(fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shop_folder(CONFIG)
    digests = {name: file_digest(folder / name) for name in SHOP_FILES}
    FAULTS[fault](folder / "interactions.parquet")
    assert shop_folder(CONFIG) == folder
    assert "warning: rebuilding the cached shop" in capsys.readouterr().err
    assert {name: file_digest(folder / name) for name in SHOP_FILES} == digests  # the same bytes again


@pytest.mark.parametrize("fault", FAULTS)
def test_a_broken_simulator_is_refitted(fault: str, capsys: pytest.CaptureFixture[str]) -> None:
    logs = read_folder(shop_folder(CONFIG))
    first, _ = load_or_fit(logs, FIT)
    FAULTS[fault](simulator_folder(logs, FIT) / "simulator.npz")
    again, _ = load_or_fit(logs, FIT)
    assert "warning: rebuilding the cached simulator" in capsys.readouterr().err
    np.testing.assert_array_equal(again.click_logit, first.click_logit)
    load_or_fit(logs, FIT)
    assert "rebuilding" not in capsys.readouterr().err  # healed: served from the cache again


def test_a_broken_ctr_model_and_candidate_table_are_rebuilt(capsys: pytest.CaptureFixture[str]) -> None:
    logs = read_folder(shop_folder(CONFIG))
    config = CTRConfig(text_encoder="hashing", optim=OptimiserConfig(epochs=1))
    first = load_or_train_ctr(logs, config)
    state = {k: v.clone() for k, v in first.model.state_dict().items()}
    flip(newest(cache_dir("ctr").glob("*/model.pt")))  # the model just trained
    again = load_or_train_ctr(logs, config)
    assert "warning: rebuilding the cached CTR model" in capsys.readouterr().err
    for key, value in again.model.state_dict().items():
        assert (value == state[key]).all(), key
    history, _ = logs.padded_histories(20)
    source = PopularitySimilaritySource(
        logs, history, np.eye(logs.n_items, 8, dtype=np.float32), protected_items(logs.items)
    )
    key = candidates_key("popularity", logs.fingerprint, 10, 20, None, None, None)
    candidates, features = cached_top_n(source, 10, key)
    truncate(newest(cache_dir("candidates").glob("*.npz")))
    again_candidates, again_features = cached_top_n(source, 10, key)
    assert "warning: rebuilding the cached candidates" in capsys.readouterr().err
    np.testing.assert_array_equal(again_candidates, candidates)
    np.testing.assert_array_equal(again_features, features)


def test_a_broken_text_embedding_cache_is_re_encoded(capsys: pytest.CaptureFixture[str]) -> None:
    texts = ["a red leather boot", "a blue cotton shirt", "a brass desk lamp"]
    encoder = TextEncoder(TextEncoderConfig())
    first = encoder.encode(texts)
    flip(encoder._cache_file(texts))
    again = TextEncoder(TextEncoderConfig()).encode(texts)
    assert "warning: rebuilding the cached text embeddings" in capsys.readouterr().err
    np.testing.assert_allclose(again, first, rtol=1e-5, atol=1e-6)
