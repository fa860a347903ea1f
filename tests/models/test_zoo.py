"""The model zoo: one constructor and output contract, strict save/load through the registry, training lowers the loss."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from banet_ops.errors import ModelError, ValidationError
from banet_ops.models import zoo
from banet_ops.models.weights import initialise_model, load_weights, save_weights
from banet_ops.training.loss import masked_bce_loss

ZOO = ["unet_convlstm", "deepforest_early", "deepforest_repr", "segnet"]
TINY: dict[str, dict[str, object]] = {
    "unet_convlstm": {"width": 4, "depth": 2},
    "deepforest_early": {"width": 4, "depth": 2, "lstm_blocks": 2, "aspp": True},
    "deepforest_repr": {"width": 4, "thermal_width": 3, "depth": 2},
    "segnet": {"width": 4, "depth": 2, "context": 1},
    "banet": {},
}


def _tiny(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return zoo.build_model(name, TINY[name])


def test_registry_lists_every_architecture_with_a_parameter_count() -> None:
    rows = {r["name"]: r for r in zoo.describe()}
    assert list(rows) == ["banet", *ZOO]
    assert rows["banet"]["parameters"] == 3_415_361
    for name in ZOO:
        assert 10_000 < rows[name]["parameters"] < rows["banet"]["parameters"], name
        assert zoo.arch_config(name, rows[name]["config"]).model_dump(mode="json") == rows[name]["config"]


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize(("t", "h", "w"), [(5, 17, 23), (1, 9, 8), (13, 31, 6)])
def test_forward_shape_on_odd_sizes_and_sequence_lengths(name: str, t: int, h: int, w: int) -> None:
    model = _tiny(name).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 4, t, h, w))
    assert y.shape == (2, 1, t, h, w) and torch.isfinite(y).all()


def test_banet_keeps_its_size_constraints() -> None:
    spec = zoo.get_spec("banet")
    assert (spec.space_multiple, spec.time_multiple) == (32, 16)
    with torch.no_grad():
        assert zoo.build_model("banet", {"sequence_len": 16}).eval()(torch.randn(1, 4, 16, 32, 32)).shape == (1, 1, 16, 32, 32)


def test_configs_are_validated() -> None:
    with pytest.raises(ValidationError, match="unet_convlstm config field 'widht'"):
        zoo.build_model("unet_convlstm", {"widht": 8})
    with pytest.raises(ValidationError, match="'depth'"):
        zoo.build_model("segnet", {"depth": 9})
    with pytest.raises(ValidationError, match="in_channels"):
        zoo.build_model("segnet", {"in_channels": 5})
    with pytest.raises(ValidationError, match="expected an architecture in"):
        zoo.build_model("resnet")


@pytest.mark.parametrize("name", ZOO)
def test_strict_save_load_round_trip_records_the_architecture(name: str, tmp_path: Path) -> None:
    model = _tiny(name, 3).eval()
    path = tmp_path / f"{name}.pth"
    sha = save_weights(model, path)
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["architecture"] == name and side["arch_config"] == zoo.arch_config(name, TINY[name]).model_dump(mode="json")
    loaded, ref = load_weights(path, "cpu", architecture=name)
    assert ref.sha256 == sha and type(loaded) is type(model) and zoo.architecture_of(loaded) == zoo.architecture_of(model)
    x = torch.randn(1, 4, 6, 20, 20)
    with torch.no_grad():
        assert torch.equal(model(x), loaded(x))
    # the file alone is enough (registry copies drop the sidecar); a wrong expectation is refused
    path.with_suffix(".json").unlink()
    assert zoo.architecture_of(load_weights(path)[0])[0] == name
    with pytest.raises(ModelError, match=f"expected architecture 'banet' \\(registry\\), found '{name}'"):
        load_weights(path, architecture="banet")


def test_strict_load_refuses_weights_of_another_config(tmp_path: Path) -> None:
    model = _tiny("segnet")
    path = tmp_path / "s.pth"
    save_weights(model, path)
    obj = torch.load(path, weights_only=True)
    obj["config"] = {**obj["config"], "width": 5}
    torch.save(obj, path)
    with pytest.raises(ModelError, match=r"not segnet weights of the recorded config: .*shape mismatch"):
        load_weights(path)
    obj["config"] = {"width": 4, "colour": "red"}
    torch.save(obj, path)
    with pytest.raises(ModelError, match="'colour'"):
        load_weights(path)


def test_plain_state_dict_is_banet_and_a_sidecar_can_name_another_architecture(tmp_path: Path) -> None:
    path = tmp_path / "plain.pth"
    torch.manual_seed(0)
    save_weights(zoo.build_model("banet"), path)
    assert not path.with_suffix(".json").exists()  # the published format, unchanged
    assert zoo.architecture_of(load_weights(path)[0])[0] == "banet"
    seg = tmp_path / "seg.pth"
    torch.save(_tiny("segnet").state_dict(), seg)  # a bare state_dict, architecture in the sidecar only
    seg.with_suffix(".json").write_text(json.dumps({"architecture": "segnet", "arch_config": TINY["segnet"]}))
    assert zoo.architecture_of(load_weights(seg)[0])[0] == "segnet"


@pytest.mark.parametrize("name", ZOO)
def test_deterministic_on_cpu(name: str) -> None:
    x = torch.randn(1, 4, 7, 19, 21, generator=torch.Generator().manual_seed(5))
    a, b = _tiny(name, 1).eval(), _tiny(name, 1).eval()
    with torch.no_grad():
        assert torch.equal(a(x), b(x)) and torch.equal(a(x), a(x))
    m1 = initialise_model(2, architecture=name, config=TINY[name])
    m2 = initialise_model(2, architecture=name, config=TINY[name])
    assert all(torch.equal(p, q) for p, q in zip(m1.state_dict().values(), m2.state_dict().values()))


def _toy_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A burn: NIR drops and FRP flashes on day 3 over a square; the target marks that day."""
    g = torch.Generator().manual_seed(0)
    x = 0.1 * torch.randn(2, 4, 6, 12, 12, generator=g)
    y = torch.zeros(2, 1, 6, 12, 12)
    x[:, 1, 3:, 3:8, 4:9] -= 2.0
    x[:, 3, 3, 3:8, 4:9] += 3.0
    y[:, 0, 3, 3:8, 4:9] = 1.0
    return x, y, torch.ones_like(y, dtype=torch.bool)


@pytest.mark.parametrize("name", ZOO)
def test_a_few_training_steps_lower_the_loss(name: str) -> None:
    model = initialise_model(0, architecture=name, config=TINY[name]).train()
    x, y, v = _toy_batch()
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(8):
        loss = masked_bce_loss(model(x), y, v, pos_weight=5.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses
