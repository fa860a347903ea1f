"""Where a region's Icechunk repository lives, and how to open it safely.

``BANET_CUBE_ROOT`` is ``s3://bucket/prefix`` (endpoint and credentials from the standard AWS
variables, so AWS S3, MinIO, Ceph or the local test server all work) or a local directory.  The
repository of region ``R`` is ``<root>/R``.

Icechunk's local-filesystem backend cannot update a branch atomically when several processes
commit at once; on local roots every commit therefore runs under an exclusive ``flock`` on
``<root>/.R.commit.lock`` (writes of chunk data stay parallel, only the short commit is
serialised; the kernel drops the lock if the holder dies).  Object stores use their conditional
writes instead.

Every storage failure leaves as an error of :mod:`banet_ops.errors` (:func:`storage_error`):
wrong bucket or credentials are permanent, anything else (a timeout, a refused or dropped
connection, a 5xx, a full disk) is :class:`StorageUnavailableError`, retryable.  Icechunk has no
request timeout for an endpoint that accepts connections and never answers, so the operations
that talk to the storage run under a deadline (:func:`with_deadline`, ``BANET_STORAGE_TIMEOUT_S``).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import icechunk as ic

from banet_ops.cube.layout import VALID_VARIABLE
from banet_ops.errors import BanetError, ConfigError, CubeNotFoundError, SnapshotNotFoundError, StorageError, StorageUnavailableError, ValidationError
from banet_ops.settings import Settings, get_settings

BRANCH = "main"
T = TypeVar("T")
# Storage answers that no retry fixes: a wrong bucket, wrong or missing credentials, no permission.
PERMANENT_MARKERS = ("NoSuchBucket", "InvalidBucketName", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Permission denied")
_REGION_NAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_SNAPSHOT_ID = re.compile(r"^[0-9A-Z]{20}$")

if "ICECHUNK_LOG" not in os.environ:
    # Icechunk logs expected events (a rebase that found a conflict, local-storage caveats) as
    # warnings on stderr; the cube handles them, so only errors are shown unless asked for.
    ic.set_logs_filter("icechunk=error")


@dataclass(frozen=True)
class CubeLocation:
    """The resolved location of one region's repository."""

    region: str
    root: str
    bucket: str | None = None
    prefix: str | None = None
    path: Path | None = None

    @property
    def is_s3(self) -> bool:
        return self.bucket is not None

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.is_s3 else str(self.path)

    def storage(self) -> ic.Storage:
        """The Icechunk storage configuration."""
        if self.bucket is not None:
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
            allow_http = (endpoint or "").startswith("http://") or os.environ.get("AWS_ALLOW_HTTP", "").lower() in ("1", "true")
            return ic.s3_storage(
                bucket=self.bucket,
                prefix=self.prefix,
                region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or None,
                endpoint_url=endpoint,
                allow_http=allow_http,
                from_env=True,
                # custom endpoints (MinIO, Ceph, test servers) rarely have virtual-host DNS
                force_path_style=endpoint is not None,
            )
        path = self.path
        if path is None:  # pragma: no cover - constructed with one of the two
            raise ConfigError("cube location without bucket or path")
        return ic.local_filesystem_storage(str(path))

    @contextlib.contextmanager
    def commit_lock(self) -> Iterator[None]:
        """Serialise commits of local repositories across processes (no-op on S3)."""
        if self.path is None:
            yield
            return
        lock_path = self.path.parent / f".{self.region}.commit.lock"
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def check_region_name(name: str) -> str:
    if not isinstance(name, str) or not _REGION_NAME.match(name):
        raise ValidationError(f"expected a region name of letters, digits and '_' (1-32), found {name!r}")
    return name


def cube_location(region: str, *, settings: Settings | None = None) -> CubeLocation:
    """Resolve ``BANET_CUBE_ROOT/<region>``."""
    check_region_name(region)
    root = (settings or get_settings()).resolved_cube_root
    if root.startswith("s3://"):
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        if not bucket:
            raise ConfigError(f"expected BANET_CUBE_ROOT as s3://bucket[/prefix], found {root!r}")
        prefix = prefix.strip("/")
        return CubeLocation(region=region, root=root, bucket=bucket, prefix=f"{prefix}/{region}" if prefix else region)
    if "://" in root and not root.startswith("file://"):
        raise ConfigError(f"expected BANET_CUBE_ROOT as s3://bucket/prefix or a local path, found {root!r}")
    path = Path(root.removeprefix("file://")).expanduser().resolve() / region
    return CubeLocation(region=region, root=root, path=path)


def icechunk_message(exc: BaseException) -> str:
    text = str(exc)
    # Icechunk errors carry a multi-line context trace; the last line is the cause.
    lines = [ln.strip(" |`->x") for ln in text.splitlines() if ln.strip(" |`->x")]
    return lines[-1] if lines else type(exc).__name__


def storage_error(exc: BaseException, loc: CubeLocation, what: str) -> StorageError:
    """The project error for a storage failure of ``what`` (retryable unless a wrong bucket or credentials)."""
    text = f"cube {loc.region} at {loc.url}: {what} failed: {icechunk_message(exc)}"
    if any(marker in str(exc) for marker in PERMANENT_MARKERS):
        return StorageError(text, hint="check the bucket, the credentials and the permissions")
    return StorageUnavailableError(text, hint="retry later: the storage failed or did not answer")


@contextlib.contextmanager
def storage_errors(loc: CubeLocation, what: str) -> Iterator[None]:
    """Map Icechunk and OS errors raised inside the block to :func:`storage_error`."""
    try:
        yield
    except BanetError:
        raise
    except (ic.IcechunkError, OSError) as exc:
        raise storage_error(exc, loc, what) from None


def with_deadline(fn: Callable[[], T], loc: CubeLocation, what: str, seconds: float) -> T:
    """``fn()``, or :class:`StorageUnavailableError` when it has not returned after ``seconds``.

    ``fn`` runs in a daemon thread: a storage call that never returns is abandoned (a commit it
    finishes later is a complete version, which the re-run finds unchanged).
    """
    out: list[Any] = []
    error: list[BaseException] = []

    def run() -> None:
        try:
            out.append(fn())
        except BaseException as exc:
            error.append(exc)

    worker = threading.Thread(target=run, name=f"cube-{loc.region}", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise StorageUnavailableError(
            f"cube {loc.region} at {loc.url}: {what}: expected the storage to answer within {seconds:g} s, found no answer",
            hint="retry later; check the storage endpoint (BANET_STORAGE_TIMEOUT_S sets the wait)",
        )
    if error:
        raise error[0]
    return out[0]  # type: ignore[no-any-return]


def open_root_group(session: Any, loc: CubeLocation) -> Any:
    """The cube's root group in ``session`` (read-only); :class:`CubeNotFoundError` for an empty repository."""
    import zarr
    from zarr.errors import NodeNotFoundError

    try:
        return zarr.open_group(session.store, mode="r")
    except (NodeNotFoundError, FileNotFoundError):
        raise CubeNotFoundError(
            f"cube {loc.region}: expected the cube's arrays in the repository at {loc.url}, found an empty repository",
            hint="it was created but no day was ever committed: ingest a day",
        ) from None


def repository_config(loc: CubeLocation) -> ic.RepositoryConfig | None:
    """Runtime settings for opening the repository (not persisted in it).

    Local files: Icechunk fetches an object in one range request by default, which the
    filesystem backend streams in 8 KiB reads; split into two range requests, each part is read
    in one call.  That cuts the CPU time of reading chunks by ~20-25 % (``benchmarks/cube.py``).
    Object stores keep one request per chunk and retry a failed request a few times, quickly.
    """
    if loc.is_s3:
        # a few quick retries inside one call; the task's retries (minutes apart) handle longer outages
        return ic.RepositoryConfig(storage=ic.StorageSettings(retries=ic.StorageRetriesSettings(max_tries=4, initial_backoff_ms=200, max_backoff_ms=2000)))
    split = ic.StorageConcurrencySettings(max_concurrent_requests_for_object=2, ideal_concurrent_request_size=1)
    return ic.RepositoryConfig(storage=ic.StorageSettings(concurrency=split))


def open_repository(loc: CubeLocation, *, create: bool = False) -> ic.Repository:
    """Open the region's repository; create it when ``create`` (safe against a racing creator)."""
    storage = loc.storage()
    for attempt in range(5):
        try:
            if ic.Repository.exists(storage):
                return ic.Repository.open(storage, config=repository_config(loc))
        except ic.IcechunkError as exc:
            raise storage_error(exc, loc, "opening the repository") from None
        if not create:
            raise CubeNotFoundError(
                f"cube {loc.region}: expected an Icechunk repository at {loc.url}, found none",
                hint=f"ingest a day or run `banet-ops import-legacy --region {loc.region} FILE...` first",
            )
        with loc.commit_lock():
            try:
                if not ic.Repository.exists(storage):
                    return ic.Repository.create(storage)
            except ic.IcechunkError:
                # another process created it between our check and create: open it next round
                time.sleep(0.05 * (attempt + 1))
    raise StorageError(f"cube {loc.region}: could not open or create the repository at {loc.url}", hint="check the storage")


def check_snapshot_id(snapshot: str) -> str:
    if not isinstance(snapshot, str) or not _SNAPSHOT_ID.match(snapshot):
        raise ValidationError(f"expected a snapshot id of 20 characters [0-9A-Z], found {snapshot!r}")
    return snapshot


def readonly_session(repo: ic.Repository, loc: CubeLocation, snapshot: str | None) -> ic.Session:
    """A read session at ``snapshot`` (or the branch tip)."""
    if snapshot is None:
        return repo.readonly_session(BRANCH)
    check_snapshot_id(snapshot)
    try:
        return repo.readonly_session(snapshot_id=snapshot)
    except ic.IcechunkError as exc:
        raise SnapshotNotFoundError(
            f"cube {loc.region}: expected snapshot {snapshot} in {loc.url}, found: {icechunk_message(exc)}",
            hint="it was never written or has been garbage-collected; use `banet-ops cube info` for the latest",
        ) from None


def snapshot_info(repo: ic.Repository, loc: CubeLocation, snapshot: str) -> Any:
    check_snapshot_id(snapshot)
    try:
        return repo.lookup_snapshot(snapshot)
    except ic.IcechunkError as exc:
        raise SnapshotNotFoundError(
            f"cube {loc.region}: expected snapshot {snapshot} in {loc.url}, found: {icechunk_message(exc)}",
            hint="it was never written or has been garbage-collected",
        ) from None


def get_array(group: Any, name: str, loc: CubeLocation) -> Any:
    """The array ``name`` of a cube group, or a clear error when the cube lacks it."""
    import zarr

    try:
        node = group[name]
    except KeyError:
        node = None
    if not isinstance(node, zarr.Array):
        raise StorageError(
            f"cube {loc.region} at {loc.url}: expected an array {name!r}, found {type(node).__name__ if node is not None else 'nothing'}",
            hint="the repository is not a banet-ops cube or was created by an incompatible version",
        )
    return node


def written_indexes(session: Any) -> list[int]:
    """Time indexes of the written days, from the chunk manifest (no chunk reads)."""

    async def collect() -> list[int]:
        return sorted([int(c[0]) async for c in session.chunk_coordinates(f"/{VALID_VARIABLE}")])

    try:
        asyncio.get_running_loop()
    except RuntimeError:  # the usual case: no event loop in this thread
        return asyncio.run(collect())
    with ThreadPoolExecutor(1) as pool:  # called from async code: run the loop of its own beside it
        return pool.submit(asyncio.run, collect()).result()
