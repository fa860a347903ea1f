"""Model registry and promotion gate on a real PostGIS, weights on disk and on S3."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
import torch

from banet_ops import registry
from banet_ops.errors import IntegrityError, ModelError, ValidationError
from banet_ops.models.banet import BANet
from banet_ops.models.weights import save_weights
from banet_ops.settings import get_settings


@pytest.fixture
def engine(registry_engine: sa.Engine) -> sa.Engine:
    return registry_engine


def _weights(tmp_path: Path, seed: int) -> Path:
    """A distinct, loadable BA-Net weight file (plain init: no calibration pass, so it is fast)."""
    path = tmp_path / f"w{seed}-{uuid.uuid4().hex[:6]}.pth"
    torch.manual_seed(seed)
    save_weights(BANet(), path)
    return path


def _metrics(vs: str, dice: float, mae: float = 1.0) -> dict[str, object]:
    return {"validation": {vs: {"dice": dice, "mean_abs_date_error": mae, "relative_bias": 0.1}}}


def test_register_is_keyed_by_content_and_stores_the_file(engine: sa.Engine, tmp_path: Path, banet_home: Path) -> None:
    w = _weights(tmp_path, 1)
    rec = registry.register_candidate(engine, w, name="banet", config={"lr": 0.001}, data_window={"train": ["T:2020-07"]}, metrics=_metrics("vs-a", 0.7))
    assert rec.status == "candidate" and rec.id == f"banet-{rec.sha256[:12]}"
    assert rec.sha256 == registry.sha256_file(w)
    stored = Path(rec.weights_uri)
    assert stored == banet_home / "products" / "models" / f"{rec.sha256}.pth" and stored.read_bytes() == w.read_bytes()
    again = registry.register_candidate(engine, w, name="banet", metrics=_metrics("vs-b", 0.6))
    assert again.id == rec.id
    assert set(again.metrics["validation"]) == {"vs-a", "vs-b"}  # merged, not duplicated
    assert len(registry.list_models(engine)) == 1
    assert registry.production_weights(engine) is None
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not torch")
    with pytest.raises(ModelError):
        registry.register_candidate(engine, bad, name="banet")


def test_gate_refuses_worse_and_accepts_better(engine: sa.Engine, tmp_path: Path) -> None:
    vs = "vs-gate"
    first = registry.register_candidate(engine, _weights(tmp_path, 1), name="banet", metrics=_metrics(vs, 0.80))
    d = registry.gate(engine, first.id, val_set_id=vs, margin=0.02)
    assert d.promoted and d.production is None and "first production" in d.reason
    paths = registry.production_weights(engine)
    assert paths is not None and registry.sha256_file(paths[0]) == first.sha256

    worse = registry.register_candidate(engine, _weights(tmp_path, 2), name="banet", metrics=_metrics(vs, 0.81))
    d = registry.gate(engine, worse.id, val_set_id=vs, margin=0.02)
    assert not d.promoted and d.production == first.id and "refused" in d.reason
    assert registry.get_model(engine, worse.id).status == "candidate"
    assert registry.production_model(engine).id == first.id  # type: ignore[union-attr]

    better = registry.register_candidate(engine, _weights(tmp_path, 3), name="banet", metrics=_metrics(vs, 0.85))
    d = registry.gate(engine, better.id, val_set_id=vs, margin=0.02)
    assert d.promoted and d.candidate_value == 0.85 and d.production_value == 0.80
    assert registry.get_model(engine, first.id).status == "retired"
    prod = registry.get_model(engine, better.id)
    assert prod.status == "production" and prod.promoted_at is not None and "0.8500 >= production" in (prod.promotion_reason or "")
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM banet.model WHERE status = 'production'")).scalar() == 1

    # error metrics: lower is better
    worse_dates = registry.register_candidate(engine, _weights(tmp_path, 4), name="banet", metrics=_metrics(vs, 0.9, mae=1.5))
    registry.record_metrics(engine, better.id, vs, {"dice": 0.85, "mean_abs_date_error": 1.0})
    assert not registry.gate(engine, worse_dates.id, val_set_id=vs, metric="mean_abs_date_error", margin=0.1).promoted
    # only comparable on the same validation set
    other = registry.register_candidate(engine, _weights(tmp_path, 5), name="banet", metrics=_metrics("vs-other", 0.99))
    with pytest.raises(ValidationError, match="vs-gate"):
        registry.gate(engine, other.id, val_set_id=vs)


def test_manual_promotion_and_cli(engine: sa.Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from banet_ops.cli import main

    a = registry.register_candidate(engine, _weights(tmp_path, 1), name="banet", metrics=_metrics("vs-x", 0.5))
    b = registry.register_candidate(engine, _weights(tmp_path, 2), name="banet")
    assert main(["models", "promote", a.id, "--reason", "bootstrap with the published weights"]) == 0
    assert registry.get_model(engine, a.id).promotion_reason == "manual: bootstrap with the published weights"
    assert main(["models", "promote", b.id, "--reason", "rollback test"]) == 0
    assert registry.get_model(engine, a.id).status == "retired"
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert a.id in out and b.id in out and "production" in out and "retired" in out and "0.500" in out
    assert main(["models", "promote", "nope-123", "--reason", "x y z"]) == 1
    assert "expected a registered model 'nope-123'" in capsys.readouterr().err
    with pytest.raises(ValidationError, match="reason"):
        registry.promote(engine, a.id, "  ")


def test_weights_on_s3_and_tamper_detection(engine: sa.Engine, tmp_path: Path, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import boto3

    monkeypatch.setenv("BANET_PRODUCTS_ROOT", f"s3://{s3_bucket}/prod")
    get_settings.cache_clear()
    rec = registry.register_candidate(engine, _weights(tmp_path, 7), name="banet", metrics=_metrics("vs-s3", 0.7))
    assert rec.weights_uri == f"s3://{s3_bucket}/prod/models/{rec.sha256}.pth"
    registry.promote(engine, rec.id, "test")
    paths = registry.production_weights(engine)
    assert paths is not None and registry.sha256_file(paths[0]) == rec.sha256
    client = boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
    client.put_object(Bucket=s3_bucket, Key=f"prod/models/{rec.sha256}.pth", Body=b"tampered")
    paths[0].unlink()
    with pytest.raises(IntegrityError, match="expected sha256"):
        registry.production_weights(engine)
