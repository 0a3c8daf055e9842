"""The shared item and user towers, and the warm start that copies them by ``state_dict``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders.towers import ItemTower, UserTower, copy_towers
from simulators.core.errors import ConfigError


def _table(n: int = 12, dim: int = 8) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)


@pytest.mark.parametrize(("side", "ids"), [(False, False), (True, False), (True, True), (False, True)])
def test_item_vectors_of_rows_equal_the_catalog_pass(side: bool, ids: bool) -> None:
    torch.manual_seed(0)
    features = np.random.default_rng(1).normal(size=(12, 3)).astype(np.float32) if side else None
    tower = ItemTower.build(_table(), features, dim=4, id_embedding=ids)
    assert (tower.side is not None) == side and (tower.ids is not None) == ids
    items = torch.tensor([[0, 5], [11, 5]])
    with torch.no_grad():
        torch.testing.assert_close(tower(items), tower.catalog()[items])
    names = set(tower.state_dict())  # the frozen tables are buffers, not weights
    assert "item_table" not in names and "item_features" not in names


def test_a_side_layer_needs_its_feature_table() -> None:
    with pytest.raises(ConfigError, match="item_features"):
        ItemTower(torch.nn.Linear(8, 4), torch.nn.Linear(3, 4), None, _table())


def test_the_warm_start_copies_the_towers_it_names() -> None:
    torch.manual_seed(0)
    table = _table()
    source_items, source_users = ItemTower.build(table, None, 4, id_embedding=False), UserTower(table, 2, 4)
    items, users = ItemTower.build(table, None, 4, id_embedding=True), UserTower(table, 2, 4)
    copied = copy_towers(source_items, source_users, items, users)
    assert copied == ["user_tower", "item_tower.text"]  # no id embedding in the source
    history = torch.tensor([[1, 2, -1], [-1, -1, -1]])
    features = torch.ones(2, 2)
    with torch.no_grad():
        torch.testing.assert_close(
            users(history, history >= 0, features), source_users(history, history >= 0, features)
        )
        torch.testing.assert_close(items.text_vectors(), source_items.text_vectors())
    with pytest.raises(ConfigError, match="different dim"):
        copy_towers(
            source_items, source_users, ItemTower.build(table, None, 6, False), UserTower(table, 2, 6)
        )
