"""The banet_retrain DAG's `architectures` param: one training target and run folder per architecture."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from banet_ops.errors import PermanentError
from banet_ops.orchestration import retrain_tasks as rt


def _plan(tmp_path: Path, archs: list[str]) -> dict[str, object]:
    params = rt.RetrainParams.model_validate({"architectures": archs, "steps": 7}).model_dump(mode="json")
    return {"params": params, "region_months": ["A:2020-07"], "val_region_months": [], "work": str(tmp_path / "work"), "key": "k"}


def test_params_validate_architectures() -> None:
    assert rt.RetrainParams().architectures == ["banet"]
    with pytest.raises(ValueError, match="expected an architecture in"):
        rt.RetrainParams.model_validate({"architectures": ["resnet"]})
    with pytest.raises(ValueError, match="distinct"):
        rt.RetrainParams.model_validate({"architectures": ["segnet", "segnet"]})


def test_one_train_target_and_run_folder_per_architecture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BANET_HOME", str(tmp_path / "home"))
    from banet_ops.settings import get_settings

    get_settings.cache_clear()
    plan = _plan(tmp_path, ["banet", "segnet"])
    targets = rt.train_targets(plan, {"manifest": "m.json"})
    assert len(targets) == 2
    banet_args, seg_args = (t["arguments"] for t in targets)
    assert "--architecture" not in banet_args and banet_args[banet_args.index("--run-dir") + 1].endswith("/work/run")  # unchanged for BA-Net
    assert seg_args[seg_args.index("--architecture") + 1] == "segnet" and seg_args[seg_args.index("--run-dir") + 1].endswith("/work/run-segnet")
    with pytest.raises(PermanentError, match=r"run/result\.json"):
        rt.trained(plan)
    for arch in ("banet", "segnet"):
        folder = rt.run_dir(plan, arch)
        folder.mkdir(parents=True)
        (folder / "w.pth").write_bytes(b"x")
        (folder / "result.json").write_text(json.dumps({"weights": str(folder / "w.pth"), "history": [1.0], "steps": 7}))
    done = rt.trained(plan)
    assert done["architecture"] == "banet" and [r["architecture"] for r in done["runs"]] == ["banet", "segnet"]
    assert rt.trained(_plan(tmp_path, ["banet"])).get("runs") is None  # a BA-Net-only run looks as before
    get_settings.cache_clear()
