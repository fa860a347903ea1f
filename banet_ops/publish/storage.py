"""Object storage for products: a local folder or ``s3://bucket/prefix``, with atomic puts.

A reader never sees a half-written object: local files are written beside their final name and
renamed into place (``os.replace``); S3 objects are uploaded straight to their final key only
once the source file is complete (a PUT, or a multipart upload, becomes visible all at once).

:class:`FileTransaction` puts several objects as one unit: it keeps the previous version of each
key, so a failure part-way (or a later database failure) restores the old set of files.  It
writes a journal (``.journal/<token>.json``) before touching any key, so a process killed
part-way leaves enough behind for the next start to finish the job: :func:`recover_journal`
rolls the transaction back (restores the backups) or forward (drops them), by what the caller
says was committed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from banet_ops.errors import ConfigError, NotFoundError, StorageError, ValidationError

log = logging.getLogger(__name__)

BACKUP_PREFIX = ".backup"
JOURNAL_PREFIX = ".journal"
PERMANENT_S3_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "InvalidBucketName"})


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValidationError(f"expected a relative object key of plain names, found {key!r}")
    return key


class ObjectStore(ABC):
    """Keys are ``/``-separated paths relative to the store's root."""

    root: str

    @abstractmethod
    def url(self, key: str) -> str:
        """Absolute location of ``key``: a file path or an ``s3://`` URL."""

    @abstractmethod
    def put_file(self, src: Path, key: str, content_type: str | None = None) -> None:
        """Store the complete file ``src`` under ``key`` atomically (``src`` may be consumed)."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes:
        """The content of ``key``; :class:`NotFoundError` when absent."""

    @abstractmethod
    def exists(self, key: str) -> bool:
        """Whether ``key`` exists."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""

    @abstractmethod
    def copy(self, src_key: str, dst_key: str) -> None:
        """Copy ``src_key`` to ``dst_key`` within the store (atomic for readers of ``dst_key``)."""

    @abstractmethod
    def list(self, prefix: str = "", *, hidden: bool = False) -> list[str]:
        """Sorted keys under ``prefix`` (hidden keys, such as backups and journals, only with ``hidden``)."""

    def put_bytes(self, data: bytes, key: str, content_type: str | None = None, tmp_dir: Path | None = None) -> None:
        """Store ``data`` under ``key`` atomically."""
        import tempfile

        fd, name = tempfile.mkstemp(dir=tmp_dir, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            self.put_file(Path(name), key, content_type)
        finally:
            Path(name).unlink(missing_ok=True)


@dataclass
class LocalStore(ObjectStore):
    """A folder on a local (or mounted) file system."""

    root: str

    def __post_init__(self) -> None:
        self.root = str(Path(self.root).expanduser().resolve())

    def _path(self, key: str) -> Path:
        return Path(self.root) / _check_key(key)

    def url(self, key: str) -> str:
        return str(self._path(key))

    def put_file(self, src: Path, key: str, content_type: str | None = None) -> None:
        dst = self._path(key)
        try:
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_name(f".{dst.name}.tmp-{uuid.uuid4().hex[:12]}")
            try:
                shutil.copyfile(src, tmp)
                with tmp.open("rb+") as fh:
                    os.fsync(fh.fileno())
                tmp.replace(dst)
            finally:
                tmp.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"could not write {dst}: {exc.strerror or exc}", hint="check the folder exists, is writable and has space") from exc

    def get_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise NotFoundError(f"expected a file at {path}, found nothing") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def copy(self, src_key: str, dst_key: str) -> None:
        src, dst = self._path(src_key), self._path(dst_key)
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(f".{dst.name}.tmp-{uuid.uuid4().hex[:12]}")
        try:
            try:
                os.link(src, tmp)  # a hard link is instant and keeps the old bytes after src is replaced
            except OSError:
                shutil.copyfile(src, tmp)
            tmp.replace(dst)
        finally:
            tmp.unlink(missing_ok=True)

    def list(self, prefix: str = "", *, hidden: bool = False) -> list[str]:
        base = Path(self.root)
        start = base / prefix if prefix else base
        if not start.exists():
            return []
        out = []
        for p in start.rglob("*"):
            rel = p.relative_to(base).as_posix()
            visible = not any(part.startswith(".") for part in rel.split("/"))
            if p.is_file() and (visible or (hidden and ".tmp-" not in p.name)):  # a .tmp- file is a put in progress
                out.append(rel)
        return sorted(out)

    def drop_stale_temporaries(self, older_than_s: float) -> int:
        """Delete the temp files of puts killed part-way (``.<name>.tmp-*``, older than ``older_than_s``); count."""
        import time

        cutoff, n = time.time() - older_than_s, 0
        for p in Path(self.root).rglob(".*.tmp-*"):
            with contextlib.suppress(OSError):
                if p.is_file() and p.stat().st_mtime < cutoff:
                    p.unlink()
                    n += 1
        return n


@dataclass
class S3Store(ObjectStore):
    """A bucket and key prefix on S3 or any S3-compatible server (endpoint from ``AWS_ENDPOINT_URL``)."""

    root: str
    bucket: str = field(init=False)
    prefix: str = field(init=False)
    _client: Any = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        rest = self.root.removeprefix("s3://").strip("/")
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise ConfigError(f"expected s3://bucket[/prefix], found {self.root!r}", hint="set a bucket name")
        self.bucket, self.prefix = bucket, prefix.strip("/")
        self.root = f"s3://{bucket}/{self.prefix}".rstrip("/")

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            self._client = boto3.client("s3")
        return self._client

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def _wrap(self, exc: Exception, what: str) -> StorageError:
        msg = f"S3 {what} failed: {type(exc).__name__}: {exc}"
        code = _s3_error_code(exc)
        if code in PERMANENT_S3_CODES:
            return StorageError(msg, hint="check the bucket name and the AWS credentials")
        err = StorageError(msg, hint="retry later")
        err.retryable = True  # a timeout, a 5xx or a dropped connection: the DAG task may retry
        return err

    def put_file(self, src: Path, key: str, content_type: str | None = None) -> None:
        extra = {"ContentType": content_type} if content_type else None
        try:
            self.client.upload_file(str(src), self.bucket, self._key(key), ExtraArgs=extra)
        except Exception as exc:
            raise self._wrap(exc, f"upload of {self.url(key)}") from exc

    def get_bytes(self, key: str) -> bytes:
        try:
            return bytes(self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read())
        except self.client.exceptions.NoSuchKey:
            raise NotFoundError(f"expected an object at {self.url(key)}, found nothing") from None
        except Exception as exc:
            raise self._wrap(exc, f"read of {self.url(key)}") from exc

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            code = _s3_error_code(exc)
            if code in ("404", "NoSuchKey", "NotFound"):
                return False
            raise self._wrap(exc, f"head of {self.url(key)}") from exc
        return True

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            raise self._wrap(exc, f"delete of {self.url(key)}") from exc

    def copy(self, src_key: str, dst_key: str) -> None:
        try:
            self.client.copy({"Bucket": self.bucket, "Key": self._key(src_key)}, self.bucket, self._key(dst_key))
        except Exception as exc:
            raise self._wrap(exc, f"copy of {self.url(src_key)}") from exc

    def list(self, prefix: str = "", *, hidden: bool = False) -> list[str]:
        full = self._key(prefix) if prefix else self.prefix
        if full and not full.endswith("/"):
            full += "/"
        keys: list[str] = []
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    rel = str(obj["Key"])[len(self.prefix) + 1 :] if self.prefix else str(obj["Key"])
                    if hidden or not any(part.startswith(".") for part in rel.split("/")):
                        keys.append(rel)
        except Exception as exc:
            raise self._wrap(exc, f"listing of s3://{self.bucket}/{full}") from exc
        return sorted(keys)


def _s3_error_code(exc: BaseException) -> str:
    """The S3 error code of ``exc`` or of the error it wraps (boto3's transfer errors wrap them)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict) and response.get("Error", {}).get("Code"):
            return str(response["Error"]["Code"])
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    return next((code for code in PERMANENT_S3_CODES if f"({code})" in text), "")


def open_store(root: str) -> ObjectStore:
    """The store for ``root``: ``s3://bucket/prefix`` or a local path (``file://`` accepted)."""
    if root.startswith("s3://"):
        return S3Store(root)
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(f"expected a products root of s3://bucket/prefix or a local path, found {root!r}")
    return LocalStore(root.removeprefix("file://"))


@dataclass
class FileTransaction:
    """Put several files as a unit: :meth:`apply` in order, then :meth:`finalize` or :meth:`rollback`.

    Before a key is overwritten its current object is copied to a hidden backup key
    (``.backup/<token>/<key>``), so :meth:`rollback` can put the previous version back (or
    remove a key that did not exist before).  Put the entry point (the STAC item) last.
    The journal ``.journal/<token>.json`` (``scope``, the keys, whether each had a previous
    version) is written before the first key changes and removed last, so that a process killed
    at any moment leaves it for :func:`recover_journal`.  Callers serialise transactions of the
    same ``scope`` (the publisher does it with its database lock).
    """

    store: ObjectStore
    scope: str = ""
    token: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    _pending: list[tuple[Path, str, str | None]] = field(default_factory=list)
    _done: list[tuple[str, bool]] = field(default_factory=list)  # (key, had a previous version)

    def add(self, src: Path, key: str, content_type: str | None = None) -> None:
        self._pending.append((src, _check_key(key), content_type))

    @property
    def journal_key(self) -> str:
        return journal_key(self.token)

    def _write_journal(self, state: str, entries: list[tuple[str, bool]]) -> None:
        body = {"token": self.token, "scope": self.scope, "state": state, "entries": [[k, had] for k, had in entries]}
        self.store.put_bytes(json.dumps(body, sort_keys=True).encode(), self.journal_key, "application/json")

    def apply(self) -> None:
        """Put every added file; on any failure, restore what was already replaced and re-raise."""
        try:
            # 1. journal (nothing changed yet), 2. backups, 3. journal with what had a previous version, 4. puts
            self._write_journal("preparing", [(key, True) for _src, key, _ct in self._pending])
            entries = []
            for _src, key, _ct in self._pending:
                had = self.store.exists(key)
                if had:
                    self.store.copy(key, backup_key(self.token, key))
                entries.append((key, had))
            self._write_journal("applying", entries)
            for (src, key, ctype), entry in zip(self._pending, entries, strict=True):
                self._done.append(entry)
                self.store.put_file(src, key, ctype)
        except BaseException:
            self.rollback()
            raise

    def rollback(self) -> None:
        """Restore the previous objects of every key put so far, then drop the backups and the journal."""
        entries, self._done = list(self._done), []
        _roll_back(self.store, self.token, entries)

    def finalize(self) -> None:
        """Drop the backups and the journal: the new files are now the state."""
        self._done.clear()
        with contextlib.suppress(Exception):  # what is left is found and dropped at the next start
            _roll_forward(self.store, self.token)


def backup_key(token: str, key: str) -> str:
    """Where a transaction keeps the previous version of ``key``."""
    return f"{BACKUP_PREFIX}/{token}/{key}"


def journal_key(token: str) -> str:
    """The journal of the transaction ``token``."""
    return f"{JOURNAL_PREFIX}/{token}.json"


@dataclass(frozen=True)
class Journal:
    """A transaction a process did not finish: its token, scope, state and (key, had a previous version)."""

    token: str
    scope: str
    state: str
    entries: tuple[tuple[str, bool], ...]


def pending_journals(store: ObjectStore) -> list[Journal]:
    """The journals left in ``store`` (transactions in flight, or of processes that died)."""
    out = []
    for key in store.list(JOURNAL_PREFIX, hidden=True):
        try:
            body = json.loads(store.get_bytes(key))
            out.append(Journal(str(body["token"]), str(body["scope"]), str(body["state"]), tuple((str(k), bool(h)) for k, h in body["entries"])))
        except NotFoundError:
            continue  # finished meanwhile
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageError(f"{store.url(key)}: expected a publish journal, found unreadable JSON ({exc})", hint="inspect and remove it by hand") from exc
    return out


def recover_journal(store: ObjectStore, journal: Journal, *, committed: bool) -> str:
    """Finish a transaction a process left: forward (drop the backups) when ``committed``, else back.

    Idempotent: a recovery killed part-way is finished by the next one.  Returns what was done.
    """
    if committed:
        _roll_forward(store, journal.token)
        return "forward"
    entries = list(journal.entries) if journal.state == "applying" else []  # "preparing": no key changed yet
    _roll_back(store, journal.token, entries)
    return "back"


def _roll_back(store: ObjectStore, token: str, entries: list[tuple[str, bool]]) -> None:
    errors = []
    for key, had in reversed(entries):
        try:
            if not had:
                store.delete(key)
            elif store.exists(backup_key(token, key)):  # gone: restored by an earlier, interrupted recovery
                store.copy(backup_key(token, key), key)
        except Exception as exc:  # keep restoring the others
            errors.append(f"{key}: {exc}")
    if errors:
        raise StorageError(f"rollback could not restore {len(errors)} object(s): {'; '.join(errors)}", hint="re-run the publish")
    _roll_forward(store, token)


def _roll_forward(store: ObjectStore, token: str) -> None:
    """Drop the backups of ``token``, then its journal (last: it is what recovery looks for)."""
    for key in store.list(f"{BACKUP_PREFIX}/{token}", hidden=True):
        store.delete(key)
    store.delete(journal_key(token))


def drop_orphan_backups(store: ObjectStore) -> int:
    """Delete backup folders that no journal speaks for (left by a process killed before its journal); count of objects."""
    backups = store.list(BACKUP_PREFIX, hidden=True)  # listed before the journals: a journal is written before its backups
    live = {j.token for j in pending_journals(store)}
    orphans = [k for k in backups if k.split("/")[1] not in live]
    for key in orphans:
        store.delete(key)
    if orphans:
        log.info("dropped %d orphaned backup object(s) under %s", len(orphans), store.url(BACKUP_PREFIX))
    return len(orphans)
