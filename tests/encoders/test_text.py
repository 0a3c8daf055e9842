"""encoders.text: the MiniLM (real weights, offline) and hashing text encoders, the cache and the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from encoders.text import HashingTextEncoder, TextEncoder, TextEncoderConfig, item_embeddings
from simulators.core.errors import ConfigError
from simulators.datasets import load_logs
from tests.conftest import SMALL_SHOP, run_cli

NEAR_A = "Nordvik Classic Navy Cotton Oxford Shirt"
NEAR_B = "Nordvik Classic Navy Cotton Oxford Shirt, slim fit"
UNRELATED = "Brewster stainless steel espresso machine with milk frother"


@pytest.fixture(scope="module")
def minilm() -> TextEncoder:
    return TextEncoder(TextEncoderConfig(device="cpu"))


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_minilm_near_identical_titles_are_closer(minilm: TextEncoder) -> None:
    a, b, c = minilm.encode([NEAR_A, NEAR_B, UNRELATED])
    assert a.shape == (384,)
    assert _cosine(a, b) > 0.8
    assert _cosine(a, b) > _cosine(a, c) + 0.3


def test_minilm_matches_sentence_transformers(minilm: TextEncoder) -> None:
    """Our mean pooling reproduces the reference implementation on the same weights."""
    sentence_transformers = pytest.importorskip("sentence_transformers")
    from encoders.text import default_model_path

    reference = sentence_transformers.SentenceTransformer(default_model_path(), device="cpu")
    texts = [NEAR_A, UNRELATED, "short"]
    expected = reference.encode(texts, normalize_embeddings=True)
    np.testing.assert_allclose(minilm.encode(texts), expected, atol=1e-4)


def test_minilm_on_the_shop_catalog_and_its_cache(
    minilm: TextEncoder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RECGYM_CACHE", str(tmp_path))  # an empty cache: other tests encode this catalog too
    logs = load_logs("shop", config=SMALL_SHOP)
    first = item_embeddings(logs, minilm)
    assert not minilm.last_from_cache
    assert first.shape == (SMALL_SHOP.n_items, 384) and first.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 1.0, atol=1e-5)
    second = item_embeddings(logs, minilm)
    assert minilm.last_from_cache
    np.testing.assert_array_equal(first, second)
    # Same category closer than different category, on average (the text carries the category).
    category = logs.items["category"].to_numpy()
    sims = first @ first.T
    same = sims[category[:, None] == category[None, :]].mean()
    other = sims[category[:, None] != category[None, :]].mean()
    assert same > other + 0.1


def test_cache_key_depends_on_the_text(minilm: TextEncoder) -> None:
    minilm.encode(["alpha item"])
    minilm.encode(["beta item"])
    assert not minilm.last_from_cache


def test_float16_storage_round_trips_closely() -> None:
    encoder = TextEncoder(TextEncoderConfig(device="cpu", store_float16=True, max_length=64))
    fresh = encoder.encode([NEAR_A, UNRELATED])
    cached = encoder.encode([NEAR_A, UNRELATED])
    assert encoder.last_from_cache and cached.dtype == np.float32
    np.testing.assert_allclose(fresh, cached, atol=2e-3)


def test_unknown_model_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no-model: no such folder"):  # a missing path is not a hub name
        TextEncoderConfig(model=str(tmp_path / "no-model"))
    with pytest.raises(ConfigError, match="cannot load text model"):  # a folder that holds no model
        TextEncoder(TextEncoderConfig(model=str(tmp_path), use_cache=False)).encode(["x"])
    assert (
        TextEncoderConfig(model="org/some-model").model == "org/some-model"
    )  # a hub name is left to the hub


def test_hashing_encoder_is_deterministic_and_similarity_aware() -> None:
    encoder = HashingTextEncoder(dim=128)
    a, b, c = encoder.encode([NEAR_A, NEAR_B, UNRELATED])
    np.testing.assert_array_equal(a, HashingTextEncoder(dim=128).encode([NEAR_A])[0])
    assert _cosine(a, b) > _cosine(a, c)
    assert not encoder.encode([""]).any()


def test_text_cli(tmp_path: Path) -> None:
    shop = tmp_path / "shop"
    from simulators.shop.files import write_shop

    write_shop(SMALL_SHOP, shop)
    result = run_cli("encoders.text", "--data", str(shop), "--out", str(tmp_path / "emb"), "--device", "cpu")
    assert result.returncode == 0, result.stderr
    table = np.load(tmp_path / "emb" / "item_embeddings.npz")
    assert table["embedding"].shape == (SMALL_SHOP.n_items, 384)


def test_text_cli_unknown_data_is_one_line(tmp_path: Path) -> None:
    result = run_cli("encoders.text", "--data", "nowhere", "--out", str(tmp_path))
    assert result.returncode == 2 and "unknown dataset 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0
