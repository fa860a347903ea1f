"""The object-storage layer: local folders and a real S3-compatible server (moto)."""

from __future__ import annotations

from pathlib import Path

import pytest

from banet_ops.errors import ConfigError, NotFoundError, StorageError, ValidationError
from banet_ops.publish.storage import FileTransaction, LocalStore, ObjectStore, S3Store, open_store


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path) -> ObjectStore:
    if request.param == "local":
        return open_store(str(tmp_path / "root"))
    bucket = request.getfixturevalue("s3_bucket")
    return open_store(f"s3://{bucket}/some/prefix")


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_open_store_kinds(tmp_path):
    assert isinstance(open_store(str(tmp_path)), LocalStore)
    assert isinstance(open_store(f"file://{tmp_path}"), LocalStore)
    s3 = open_store("s3://bucket/a/b/")
    assert isinstance(s3, S3Store) and s3.url("x/y.tif") == "s3://bucket/a/b/x/y.tif"
    with pytest.raises(ConfigError, match="s3://bucket"):
        open_store("gs://bucket/x")


def test_put_get_list_delete(store, tmp_path):
    store.put_file(_file(tmp_path, "a", b"alpha"), "R/nrt/2017/a.tif", "image/tiff")
    store.put_bytes(b"beta", "R/nrt/2017/b.json")
    assert store.get_bytes("R/nrt/2017/a.tif") == b"alpha"
    assert store.exists("R/nrt/2017/b.json") and not store.exists("R/nrt/2017/c")
    assert store.list("R") == ["R/nrt/2017/a.tif", "R/nrt/2017/b.json"]
    store.put_bytes(b"alpha2", "R/nrt/2017/a.tif")  # overwrite
    assert store.get_bytes("R/nrt/2017/a.tif") == b"alpha2"
    store.delete("R/nrt/2017/a.tif")
    store.delete("R/nrt/2017/a.tif")  # absent: no error
    with pytest.raises(NotFoundError, match="expected"):
        store.get_bytes("R/nrt/2017/a.tif")
    assert store.list() == ["R/nrt/2017/b.json"]


def test_keys_with_paths_are_refused(store):
    for bad in ("../x", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(ValidationError):
            store.put_bytes(b"x", bad)


def test_local_put_leaves_no_temp_files(tmp_path):
    store = LocalStore(str(tmp_path / "root"))
    store.put_bytes(b"x" * 1000, "k/v.bin")
    assert [p.name for p in (tmp_path / "root" / "k").iterdir()] == ["v.bin"]


def test_local_put_failure_keeps_old_file(tmp_path, monkeypatch):
    store = LocalStore(str(tmp_path / "root"))
    store.put_bytes(b"old", "k/v.bin")
    import shutil

    def half_copy(src, dst):
        Path(dst).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", half_copy)
    with pytest.raises(StorageError, match="No space left"):
        store.put_bytes(b"new", "k/v.bin")
    assert (tmp_path / "root" / "k" / "v.bin").read_bytes() == b"old"
    assert [p.name for p in (tmp_path / "root" / "k").iterdir()] == ["v.bin"]


def test_transaction_commit_and_rollback(store, tmp_path):
    store.put_bytes(b"old-1", "p/one")
    tx = FileTransaction(store)
    tx.add(_file(tmp_path, "n1", b"new-1"), "p/one")
    tx.add(_file(tmp_path, "n2", b"new-2"), "p/two")
    tx.apply()
    assert store.get_bytes("p/one") == b"new-1" and store.get_bytes("p/two") == b"new-2"
    tx.rollback()  # e.g. the database commit failed afterwards
    assert store.get_bytes("p/one") == b"old-1" and not store.exists("p/two")
    assert store.list() == ["p/one"]

    tx = FileTransaction(store)
    tx.add(_file(tmp_path, "n1", b"new-1"), "p/one")
    tx.apply()
    tx.finalize()
    assert store.get_bytes("p/one") == b"new-1"
    assert store.list() == ["p/one"]  # backups are gone
    if isinstance(store, LocalStore):
        assert not [p for p in Path(store.root).rglob("*") if p.is_file() and ".backup" in p.parts]


def test_transaction_failure_midway_restores(store, tmp_path, monkeypatch):
    store.put_bytes(b"old-1", "p/one")
    store.put_bytes(b"old-3", "p/three")
    real_put = type(store).put_file
    calls = []

    def flaky(self, src, key, content_type=None):
        calls.append(key)
        if key == "p/three":
            raise StorageError("injected upload failure")
        return real_put(self, src, key, content_type)

    monkeypatch.setattr(type(store), "put_file", flaky)
    tx = FileTransaction(store)
    tx.add(_file(tmp_path, "n1", b"new-1"), "p/one")
    tx.add(_file(tmp_path, "n2", b"new-2"), "p/two")
    tx.add(_file(tmp_path, "n3", b"new-3"), "p/three")
    with pytest.raises(StorageError, match="injected"):
        tx.apply()
    monkeypatch.undo()
    assert [c for c in calls if not c.startswith(".journal/")] == ["p/one", "p/two", "p/three"]
    assert store.get_bytes("p/one") == b"old-1" and store.get_bytes("p/three") == b"old-3"
    assert not store.exists("p/two")
    assert store.list() == ["p/one", "p/three"]


def test_s3_missing_bucket_is_a_clear_error(s3_bucket):
    store = open_store(f"s3://{s3_bucket}-missing/x")
    with pytest.raises(StorageError, match="bucket") as info:
        store.put_bytes(b"x", "k")
    assert not info.value.retryable
