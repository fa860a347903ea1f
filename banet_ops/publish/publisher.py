"""``publish_product``: COGs, quicklook and STAC item in object storage, rows in PostGIS, atomically.

Order of work (each step leaves the previous state intact when it fails):

1. finish the file transactions of publishers that died (their journals, see below);
2. validate the product, render both COGs and the quicklook and compute the fire events into
   a private temp folder (nothing visible yet);
3. open one database transaction: the scope's lock row (which readers cannot take, waits
   bounded by a lock timeout), region row, run row, burned cells, fire events;
4. build the STAC item (it carries the run id) and put the files to their final keys as one
   :class:`~banet_ops.publish.storage.FileTransaction`: a journal first, each key's previous
   object kept aside, data files next and the STAC item last;
5. record the transaction's token in the run row, mark the run succeeded and commit; then drop
   the kept-aside objects and the journal (and summarise the new BRIN ranges of the cells, a
   best-effort step of its own).

A failure in 3–5 restores the previous files (still under the lock) and rolls the transaction
back.  A process killed anywhere leaves its journal: the next publish (of any scope, and always
of this scope under its lock, before it writes) looks the token up in ``banet.run``: committed
means the new files are current (drop the backups), not committed means they are not (restore
the backups).  So files, STAC item and PostGIS describe the same run once any publish has
started again; a reader may see a mixture only while a publish is in flight.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from banet_ops import __version__
from banet_ops.db import runs
from banet_ops.errors import BanetError, ValidationError
from banet_ops.product import Product
from banet_ops.publish import cog, postgis, quicklook, stac
from banet_ops.publish import storage as files_journal
from banet_ops.publish.storage import FileTransaction, LocalStore, ObjectStore, open_store
from banet_ops.settings import Settings, get_settings
from banet_ops.util import timed

log = logging.getLogger(__name__)

SHA256 = re.compile(r"^[0-9a-f]{64}$")
# How long the settling of another scope's journal at start waits for that scope's lock.
RECOVERY_LOCK_WAIT = "3s"
# A temp file beside a product older than this belongs to a put that was killed part-way.
STALE_TEMP_S = 3600.0


@dataclass(frozen=True)
class PublishResult:
    """Outcome of :func:`publish_product`: run id, where the files are, counts and timings (s)."""

    run_id: int
    outputs: dict[str, str]
    n_burned_cells: int
    burned_area_km2: float
    n_events: int
    n_deleted_cells: int
    timings: dict[str, float] = field(default_factory=dict)
    # stored fire events of the window: updated / unchanged (id kept), inserted, deleted
    event_changes: dict[str, int] = field(default_factory=dict)

    @property
    def stac_item(self) -> str:
        return self.outputs["stac_item"]


def product_prefix(product: Product) -> str:
    """``{region}/{mode}/{YYYY}/{target}``: the folder of one product in the products root."""
    return f"{product.region.name}/{product.mode}/{product.target_date.year:04d}/{stac.target_label(product)}"


def product_keys(product: Product) -> dict[str, str]:
    """Object keys of the product's files, by asset name."""
    base = f"{product_prefix(product)}/BANET_{product.region.name}_{product.mode}_{stac.target_label(product)}"
    return {
        "confidence": f"{base}_confidence.tif",
        "burn_date": f"{base}_burndate.tif",
        "quicklook": f"{base}_quicklook.png",
        "stac_item": f"{base}.json",
    }


def validate_product(product: Product) -> None:
    """Check what publishing relies on; raise :class:`ValidationError` naming the problem."""
    name = f"product {product.region.name} {product.mode} {product.target_date}"
    if product.mode not in ("nrt", "monthly"):
        raise ValidationError(f"{name}: expected mode nrt or monthly, found {product.mode!r}")
    if product.window_start > product.window_end:
        raise ValidationError(f"{name}: expected window_start <= window_end, found {product.window_start} > {product.window_end}")
    if not product.models:
        raise ValidationError(f"{name}: expected at least one model in the ensemble, found none")
    bad = [m.sha256 for m in product.models if not SHA256.match(m.sha256)]
    if bad:
        raise ValidationError(f"{name}: expected lowercase hex sha256 model hashes, found {bad}")
    if not product.cube_snapshot:
        raise ValidationError(f"{name}: expected the cube snapshot id, found an empty string")
    burned = product.burned
    if not burned.any():
        return
    conf = product.confidence[burned]
    if not np.all(np.isfinite(conf) & (conf >= 0) & (conf <= 1)):
        raise ValidationError(f"{name}: expected burned cells to have a confidence in [0, 1], found {int((~((conf >= 0) & (conf <= 1))).sum())} outside")
    if not product.observed_mask[burned].all():
        raise ValidationError(f"{name}: expected burned cells to be observed, found {int((~product.observed_mask[burned]).sum())} without an observation")
    dates = product.burn_date[burned].astype("datetime64[D]")
    if np.isnat(dates).any():
        raise ValidationError(f"{name}: expected every burned cell to have a burn date, found {int(np.isnat(dates).sum())} without")
    first, last = postgis.effective_window(product)
    lo, hi = dates.min().astype(dt.date), dates.max().astype(dt.date)
    if lo < first or hi > last:
        raise ValidationError(
            f"{name}: expected burn dates within the effective window {first}..{last}, found {lo}..{hi}",
            hint="apply the window rules (NRT: first day discarded; monthly: the month only) before publishing",
        )


def _render(product: Product, folder: Path, keys: dict[str, str], timings: dict[str, float]) -> dict[str, Path]:
    files = {name: folder / Path(key).name for name, key in keys.items()}
    with timed(timings, "cog"):
        cog.write_confidence_cog(files["confidence"], product)
        cog.write_burn_date_cog(files["burn_date"], product)
    with timed(timings, "quicklook"):
        quicklook.render_quicklook(files["quicklook"], product)
    return files


def _asset_refs(store: ObjectStore, keys: dict[str, str]) -> dict[str, stac.AssetRef]:
    return {
        "confidence": stac.AssetRef("confidence", store.url(keys["confidence"]), stac.COG_MEDIA_TYPE, ("data",), "BA-Net confidence (0-1)"),
        "burn_date": stac.AssetRef(
            "burn_date", store.url(keys["burn_date"]), stac.COG_MEDIA_TYPE, ("data",), "Burn date YYYYDDD (0 = not burned, -1 = not observed)"
        ),
        "quicklook": stac.AssetRef("quicklook", store.url(keys["quicklook"]), stac.PNG_MEDIA_TYPE, ("overview", "visual"), "Quicklook"),
    }


def publish_product(product: Product, *, settings: Settings | None = None) -> PublishResult:
    """Publish ``product``: COGs, quicklook and STAC item under the products root, rows in PostGIS.

    Idempotent: publishing the same (region, product, date, models, snapshot) again keeps the
    run id and leaves the same cells and events.  Atomic: on any failure the previous files and
    rows stay as they were, and the error is raised.
    """
    settings = settings or get_settings()
    t_total = time.perf_counter()
    started_at = dt.datetime.now(dt.UTC)
    validate_product(product)
    store = open_store(settings.resolved_products_root)
    keys = product_keys(product)
    timings: dict[str, float] = {}

    from banet_ops.db.engine import get_engine

    engine = get_engine(settings.resolved_database_url())
    recover_publishes(store, engine)
    with tempfile.TemporaryDirectory(prefix="banet-publish-") as tmp:
        files = _render(product, Path(tmp), keys, timings)
        files_tx = FileTransaction(store, scope=postgis.scope_name(product))
        raw = engine.raw_connection()
        committing = False
        try:
            db = _write_all(raw, product, store, keys, files, files_tx, timings, started_at, t_total, settings.event_max_gap_days)
            committing = True
            raw.commit()
        except BaseException as exc:
            if committing:  # the commit may have happened: the journal stays, the next start decides
                log.error("commit of publish %s failed; its files are settled at the next publish", files_tx.token)
            else:
                _undo(raw, files_tx)
            if isinstance(exc, BanetError) or not _is_db_error(exc):
                raise
            raise postgis.wrap_db_error(exc, f"publishing {product.region.name} {product.mode} {product.target_date}") from exc
        else:
            timings["db_summarize"] = postgis.summarize_cells(raw, product)  # after the commit, best effort
        finally:
            raw.close()
        files_tx.finalize()

    timings["total"] = time.perf_counter() - t_total
    result = PublishResult(
        run_id=db.run_id,
        outputs={name: store.url(key) for name, key in keys.items()},
        n_burned_cells=db.n_burned_cells,
        burned_area_km2=db.burned_area_km2,
        n_events=db.n_events,
        n_deleted_cells=db.n_deleted,
        timings=timings,
        event_changes=db.event_counts,
    )
    log.info(
        "published %s %s %s: run %d, %d cells (%.1f km2), %d events, %.2fs",
        product.region.name, product.mode, product.target_date, result.run_id, result.n_burned_cells,
        result.burned_area_km2, result.n_events, timings["total"],
    )  # fmt: skip
    return result


def _write_all(
    raw: Any,
    product: Product,
    store: ObjectStore,
    keys: dict[str, str],
    files: dict[str, Path],
    files_tx: FileTransaction,
    timings: dict[str, float],
    started_at: dt.datetime,
    t_total: float,
    max_gap_days: int,
) -> postgis.DbWrite:
    """Inside the open transaction: rows, then the STAC item, then the files; the caller commits."""
    outputs = {name: store.url(key) for name, key in keys.items()}
    cur = raw.cursor()
    try:
        db = postgis.write_product(cur, product, started_at=started_at, max_gap_days=max_gap_days)
        timings.update(db.timings)
        counts = {"n_burned_cells": db.n_burned_cells, "burned_area_km2": db.burned_area_km2, "n_events": db.n_events}

        with timed(timings, "stac"):
            refs = _asset_refs(store, keys)
            item = stac.build_item(
                product,
                effective_window=postgis.effective_window(product),
                confidence=refs["confidence"],
                burn_date=refs["burn_date"],
                quicklook=refs["quicklook"],
                self_href=outputs["stac_item"],
                run_id=db.run_id,
                stats=counts,
                relative=isinstance(store, LocalStore),
            )
            files["stac_item"].write_text(json.dumps(item, indent=2, sort_keys=True))

        with timed(timings, "files"):
            _recover_scope(cur, store, files_tx.scope)  # under the scope's lock: files of a dead publisher first
            for name in ("confidence", "burn_date", "quicklook"):
                files_tx.add(files[name], keys[name], refs[name].media_type)
            files_tx.add(files["stac_item"], keys["stac_item"], stac.JSON_MEDIA_TYPE)  # the entry point goes last
            files_tx.apply()
            runs.record_publish_token(cur, db.run_id, files_tx.token)

        timings["total"] = time.perf_counter() - t_total
        all_timings = {**{f"infer_{k}": v for k, v in product.timings.items()}, **{f"publish_{k}": v for k, v in timings.items()}}
        runs.finish_run(cur, db.run_id, timings=all_timings, counts=counts, outputs=outputs, version=__version__)
        return db
    finally:
        cur.close()


def _undo(raw: object, files_tx: FileTransaction) -> None:
    """Restore the previous files (still under the scope's lock), then roll back; never mask the original error."""
    try:
        files_tx.rollback()
    except Exception:  # the journal stays: the next publish of the scope restores them
        log.error("could not restore the previous product files", exc_info=True)
    try:
        raw.rollback()  # type: ignore[attr-defined]
    except Exception:  # the connection may be gone; the server rolls back on its own then
        log.warning("rollback of the publish transaction failed", exc_info=True)


def _recover_scope(cur: Any, store: ObjectStore, scope: str) -> None:
    """Settle the journals of ``scope`` (the caller holds its lock, so their publishers are gone)."""
    for journal in files_journal.pending_journals(store):
        if journal.scope == scope:
            done = files_journal.recover_journal(store, journal, committed=runs.token_committed(cur, journal.token))
            log.warning("publish %s of %s was interrupted; its files were rolled %s", journal.token, scope, done)


def recover_publishes(store: ObjectStore, engine: Any) -> int:
    """Settle the journals of publishers that died (scopes nobody holds now), drop orphaned backups and stale temp files.

    Each journal is settled in a short transaction holding its scope's lock.  The lock is waited
    for :data:`RECOVERY_LOCK_WAIT` (the server may not yet have ended the transaction of a
    publisher killed a moment ago); a scope still locked then belongs to a publish in flight and
    its journal is left alone.  Returns how many were settled.
    """
    from psycopg import errors as pgerr

    journals = files_journal.pending_journals(store)
    settled = 0
    for journal in journals:
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            runs.set_lock_timeout(cur, RECOVERY_LOCK_WAIT)
            runs.lock_publish_scope(cur, journal.scope)
            done = files_journal.recover_journal(store, journal, committed=runs.token_committed(cur, journal.token))
            log.warning("publish %s of %s was interrupted; its files were rolled %s", journal.token, journal.scope, done)
            settled += 1
            raw.commit()
        except pgerr.LockNotAvailable:
            raw.rollback()
            log.info("publish %s of %s is in flight; its journal is left to it", journal.token, journal.scope)
        except Exception as exc:
            raw.rollback()
            if _is_db_error(exc):
                raise postgis.wrap_db_error(exc, f"settling the interrupted publish {journal.token}") from exc
            raise
        finally:
            raw.close()
    files_journal.drop_orphan_backups(store)
    if isinstance(store, LocalStore):  # S3 uploads leave no partial object behind
        store.drop_stale_temporaries(STALE_TEMP_S)
    return settled


def _is_db_error(exc: BaseException) -> bool:
    import psycopg

    return isinstance(exc, psycopg.Error)
