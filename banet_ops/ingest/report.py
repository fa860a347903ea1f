"""What an ingestion found, fetched, used and rejected: per-file outcomes, the day's report, its result."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from banet_ops.ingest.readers.firms_csv import FirmsReport
from banet_ops.util import timed


@dataclass
class FileOutcome:
    """What happened to one input file (JSON-serialisable: it travels between DAG tasks)."""

    name: str
    product: str
    status: str  # discovered / ingested / rejected / skipped
    fetch: str = "local"  # local (mirror, in place) / downloaded / reused (cache)
    message: str = ""
    size: int | None = None
    checksum: str | None = None
    url: str | None = None
    path: str | None = None  # where it was fetched to (a cached copy is deleted when rejected)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FileOutcome:
        return cls(**data)


@dataclass
class BuildReport:
    """Everything the stages found, fetched, used and rejected for one region-day."""

    region: str
    day: dt.date
    files: list[FileOutcome] = field(default_factory=list)
    discovery_rejected: list[tuple[str, str]] = field(default_factory=list)
    firms: list[FirmsReport] = field(default_factory=list)
    n_detections: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    kept: str = ""  # why the stored, more complete version of the day was kept
    read_in_dry_run: bool = False  # a dry run whose files were all on disk read them (nothing written)

    def count(self, attr: str, value: str) -> int:
        return sum(1 for f in self.files if getattr(f, attr) == value)

    @property
    def rejected(self) -> list[tuple[str, str]]:
        return [(f.name, f.message) for f in self.files if f.status == "rejected"] + self.discovery_rejected

    @property
    def n_rejected_files(self) -> int:
        """Input files that were fetched (or found in place) and could not be read, wholly or in part (a FIRMS file
        with malformed rows: their detections are missing from the day); a refused listing entry is not one."""
        return self.count("status", "rejected") + sum(1 for r in self.firms if r.n_rejected)

    @property
    def used(self) -> list[str]:
        return sorted(f.name for f in self.files if f.status == "ingested")

    @property
    def firms_rows_rejected(self) -> int:
        return sum(r.n_rejected for r in self.firms)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        with timed(self.timings, stage):
            yield


@dataclass
class IngestResult:
    """Outcome of ``ingest_day`` (also what ``banet-ops ingest`` prints)."""

    region: str
    day: dt.date
    status: str  # complete / partial / empty / kept (dry runs: what it would be)
    snapshot: str | None
    granules: list[str]
    found: int
    downloaded: int
    reused: int
    rejected: list[tuple[str, str]]
    valid_fraction: float
    n_detections: int
    firms_rows_rejected: int
    timings: dict[str, float]
    dry_run: bool = False

    def summary(self) -> str:
        what = "would commit" if self.dry_run else f"snapshot {self.snapshot}"
        if self.status == "kept":
            what = "nothing committed: the stored version is more complete (--force replaces it)"
        if self.dry_run and self.status == "dry-run":  # files to download: not read, so nothing to say about cells
            return (
                f"{self.region} {self.day}: dry run, {self.found} files found ({self.reused} cached, "
                f"{self.downloaded} to download; not read in a dry run, so cell coverage unknown), would commit the day"
            )
        return (
            f"{self.region} {self.day}: {self.status}, {len(self.granules)} files used of {self.found} found "
            f"({self.downloaded} downloaded, {self.reused} reused), {len(self.rejected)} rejected, "
            f"{self.valid_fraction:.1%} of cells observed, {self.n_detections} fire detections "
            f"({self.firms_rows_rejected} bad FIRMS rows), {what}"
        )
