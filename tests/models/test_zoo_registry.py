"""A zoo model registered, promoted and loaded back through the registry builds its own architecture."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from banet_ops import registry
from banet_ops.models import zoo
from banet_ops.models.weights import load_weights, save_weights


@pytest.fixture
def engine(registry_engine: sa.Engine) -> sa.Engine:
    return registry_engine


TINY = {
    "unet_convlstm": {"width": 4, "depth": 1},
    "deepforest_early": {"width": 4, "depth": 1, "lstm_blocks": 1},
    "deepforest_repr": {"width": 4, "thermal_width": 2, "depth": 1},
    "segnet": {"width": 4, "depth": 1, "context": 1},
}


@pytest.mark.parametrize("name", list(TINY))
def test_registry_row_records_architecture_and_production_weights_load_it(name: str, engine: sa.Engine, tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = zoo.build_model(name, TINY[name]).eval()
    path = tmp_path / "u.pth"
    save_weights(model, path)
    rec = registry.register_candidate(engine, path, name=name, metrics={"validation": {"vs": {"dice": 0.8}}})
    assert rec.architecture == name and rec.arch_config == zoo.arch_config(name, TINY[name]).model_dump(mode="json")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT architecture FROM banet.model WHERE id = :id"), {"id": rec.id}).scalar_one() == name
    assert registry.gate(engine, rec.id, val_set_id="vs").promoted
    (stored,) = registry.production_weights(engine) or []
    assert not stored.with_suffix(".json").exists()  # the registry copy is the .pth alone: it carries its architecture
    loaded, _ = load_weights(stored, "cpu", architecture=registry.production_model(engine).architecture)  # type: ignore[union-attr]
    x = torch.randn(1, 4, 5, 11, 13)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))
    banet_path = tmp_path / "b.pth"
    save_weights(zoo.build_model("banet"), banet_path)
    assert registry.register_candidate(engine, banet_path, name="banet").architecture == "banet"
