"""BA-Net module: published structure, parameter count, weight files."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from banet_ops.errors import ModelError
from banet_ops.models.banet import PARAMETER_COUNT, BANet, count_parameters, fuse_for_inference
from banet_ops.models.weights import init_weights, load_weights, save_weights


def test_parameter_count_is_the_published_one() -> None:
    model = BANet(4, 1, 64)
    assert PARAMETER_COUNT == 3_415_361
    assert count_parameters(model) == 3_415_361


def test_state_dict_keys_follow_the_published_names() -> None:
    keys = list(BANet(4, 1, 64).state_dict())
    for key in (
        "stconv1.stconv.0.conv.0.weight",
        "stconv1.stconv.0.conv.1.bn.running_var",
        "stconv1.stconv.1.timeConv.weight",
        "stconv1.stconv.1.timeLstm.lstm.weight_ih_l0",
        "stconv1.stconv.1.bn.bn.weight",
        "stconv5.stconv.1.timeConv.weight",
        "stconv6.conv.0.weight",
        "ustconv6.conv.0.weight",
        "ustconv2.upstconv.1.conv.0.weight",
        "conv3.weight",
        "bn.bn.num_batches_tracked",
        "final_conv.weight",
        "final_conv.bias",
    ):
        assert key in keys, key
    assert keys[0] == "stconv1.stconv.0.conv.0.weight"
    assert keys[-1] == "final_conv.bias"
    assert not any("timeLstm" in k for k in keys if not k.startswith("stconv1."))
    assert len(keys) == 132


def test_output_shape_and_time_resolution() -> None:
    model = BANet(4, 1, 64).eval()
    with torch.inference_mode():
        out = model(torch.zeros(1, 4, 64, 32, 32))
    assert out.shape == (1, 1, 64, 32, 32)


def _independent_state_dict(seed: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    model = BANet(4, 1, 64)
    for module in model.modules():  # non-default statistics so the test sees them travel
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)  # type: ignore[union-attr]
            module.running_var.uniform_(0.5, 2)  # type: ignore[union-attr]
    return model.state_dict()


@pytest.mark.parametrize("wrapped", [False, True])
def test_strict_load_of_a_plain_or_wrapped_state_dict(tmp_path: Path, wrapped: bool) -> None:
    sd = _independent_state_dict(7)
    path = tmp_path / "w.pth"
    torch.save({"model": sd, "opt": {"lr": 1e-3}} if wrapped else sd, path)
    model, ref = load_weights(path, "cpu")
    assert not model.training
    loaded = model.state_dict()
    assert set(loaded) == set(sd)
    for k, v in sd.items():
        assert torch.equal(loaded[k], v), k
    import hashlib

    assert ref.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ref.path == str(path)


def test_save_weights_is_atomic_and_round_trips(tmp_path: Path) -> None:
    model = BANet(4, 1, 64)
    path = tmp_path / "sub" / "m.pth"
    sha = save_weights(model, path)
    assert [p.name for p in path.parent.iterdir()] == ["m.pth"]
    loaded, ref = load_weights(path)
    assert ref.sha256 == sha
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_wrong_architecture_is_a_model_error_listing_keys(tmp_path: Path) -> None:
    path = tmp_path / "three_bands.pth"
    torch.save(BANet(3, 1, 64).state_dict(), path)
    with pytest.raises(ModelError, match=r"shape mismatch.*stconv1\.stconv\.0\.conv\.0\.weight"):
        load_weights(path)
    sd = BANet(4, 1, 64).state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["final_conv.bias"]
    torch.save(sd, path)
    with pytest.raises(ModelError) as err:
        load_weights(path)
    assert "missing key(s) e.g. ['final_conv.bias']" in str(err.value)
    assert "unexpected key(s) e.g. ['extra.weight']" in str(err.value)


def test_corrupt_missing_and_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_weights(tmp_path / "nope.pth")
    good = io.BytesIO()
    torch.save(BANet(4, 1, 64).state_dict(), good)
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes(good.getvalue()[: len(good.getvalue()) // 2])
    with pytest.raises(ModelError, match="corrupt"):
        load_weights(truncated)
    html = tmp_path / "login.pth"
    html.write_text("<html>Please log in</html>")
    with pytest.raises(ModelError, match="corrupt"):
        load_weights(html)
    listy = tmp_path / "list.pth"
    torch.save([1, 2, 3], listy)
    with pytest.raises(ModelError, match="expected a state_dict"):
        load_weights(listy)


def test_cuda_without_gpu_is_a_clear_error(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    init_path = tmp_path / "w.pth"
    torch.save(BANet(4, 1, 64).state_dict(), init_path)
    with pytest.raises(ModelError, match="CUDA"):
        load_weights(init_path, "cuda")


def test_init_weights_is_reproducible_and_loads(tmp_path: Path, banet: BANet) -> None:
    ref = init_weights(tmp_path / "a.pth", seed=0)
    model, loaded_ref = load_weights(tmp_path / "a.pth")
    assert loaded_ref.sha256 == ref.sha256
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), banet.state_dict().values()))


def test_fused_inference_form_matches_the_module(banet: BANet) -> None:
    x = torch.randn(1, 4, 64, 32, 32, generator=torch.Generator().manual_seed(3))
    fused = fuse_for_inference(banet)
    with torch.inference_mode():
        a = torch.sigmoid(banet(x))
        b = torch.sigmoid(fused(x))
        c = torch.sigmoid(fused.to(memory_format=torch.channels_last_3d)(x.contiguous(memory_format=torch.channels_last_3d)))
    assert a.std() > 1e-4  # the calibrated model's output varies
    assert torch.allclose(a, b, atol=1e-5)
    assert torch.allclose(a, c, atol=1e-5)
