"""Expiring old snapshots and collecting unreferenced chunks, keeping what runs used.

A snapshot that a recorded run read (``banet.run.cube_snapshot``) or that the operator names is
protected by an Icechunk tag ``keep-<snapshot>`` before expiry: tags are references, so their
snapshots, manifests and chunks survive ``expire_snapshots`` + ``garbage_collect``.  Keep tags of
snapshots no longer kept are removed on the next run so their data can go too.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import icechunk as ic
from sqlalchemy.engine import Engine

from banet_ops.cube.storage import check_snapshot_id, cube_location, icechunk_message, open_repository, snapshot_info
from banet_ops.errors import StorageError, ValidationError
from banet_ops.settings import Settings

log = logging.getLogger(__name__)
KEEP_TAG_PREFIX = "keep-"
DEFAULT_GRACE = dt.timedelta(hours=1)


@dataclass
class GcResult:
    region: str
    expired_snapshots: int
    kept: list[str]
    missing_kept: list[str] = field(default_factory=list)
    released: list[str] = field(default_factory=list)
    snapshots_deleted: int = 0
    manifests_deleted: int = 0
    chunks_deleted: int = 0
    bytes_deleted: int = 0


def _tag_for(repo: ic.Repository, snapshot: str) -> str:
    name = f"{KEEP_TAG_PREFIX}{snapshot}"
    try:
        repo.create_tag(name, snapshot)
    except ic.IcechunkError:
        # tags are immutable and a deleted tag name cannot be reused: make a fresh one
        name = f"{name}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%S%f}"
        repo.create_tag(name, snapshot)
    return name


def gc_cube(
    region: str,
    older_than: dt.timedelta,
    keep: Sequence[str] = (),
    *,
    engine: Engine | None = None,
    settings: Settings | None = None,
    grace: dt.timedelta = DEFAULT_GRACE,
) -> GcResult:
    """Expire snapshots older than ``older_than`` and delete what no kept snapshot references.

    ``keep`` plus (with ``engine``) every ``banet.run.cube_snapshot`` of the region stay readable.
    Unreferenced objects younger than ``grace`` are left alone, so a writer that has written chunks
    but not yet committed loses nothing.
    """
    if older_than < dt.timedelta(0) or grace < dt.timedelta(0):
        raise ValidationError(f"expected non-negative durations, found older_than={older_than}, grace={grace}")
    loc = cube_location(region, settings=settings)
    repo = open_repository(loc)
    explicit = {check_snapshot_id(s) for s in keep}
    for snap in explicit:
        snapshot_info(repo, loc, snap)  # SnapshotNotFoundError for a typo or an already collected id
    recorded: set[str] = set()
    if engine is not None:
        from banet_ops.cube.db import recorded_snapshots

        recorded = recorded_snapshots(engine, region)
    kept: set[str] = set(explicit)
    missing: list[str] = []
    for snap in sorted(recorded - explicit):
        try:
            snapshot_info(repo, loc, snap)
        except (StorageError, ValidationError):
            missing.append(snap)
            log.warning("cube %s: recorded run snapshot %s is no longer in the repository", region, snap)
        else:
            kept.add(snap)

    tags = {tag: repo.lookup_tag(tag) for tag in repo.list_tags() if tag.startswith(KEEP_TAG_PREFIX)}
    protected = set(tags.values())
    for snap in sorted(kept - protected):
        log.info("cube %s: tagged %s to keep it", region, _tag_for(repo, snap))
    released = []
    for tag, snap in sorted(tags.items()):
        if snap not in kept:
            repo.delete_tag(tag)
            released.append(snap)

    now = dt.datetime.now(dt.UTC)
    cutoff = now - older_than
    try:
        expired = repo.expire_snapshots(cutoff)
        summary = repo.garbage_collect(min(cutoff, now - grace))
    except ic.IcechunkError as exc:
        raise StorageError(f"cube {region}: garbage collection at {loc.url} failed: {icechunk_message(exc)}", hint="retry; gc is idempotent") from None
    return GcResult(
        region=region,
        expired_snapshots=len(expired),
        kept=sorted(kept),
        missing_kept=missing,
        released=sorted(set(released)),
        snapshots_deleted=summary.snapshots_deleted,
        manifests_deleted=summary.manifests_deleted,
        chunks_deleted=summary.chunks_deleted,
        bytes_deleted=summary.bytes_deleted,
    )
