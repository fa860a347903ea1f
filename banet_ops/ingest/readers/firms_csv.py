"""Reader of FIRMS VIIRS active-fire CSV files in the three shapes found in the wild.

* ``area_api``: the area/country API (14 columns with ``instrument``; ``acq_time`` ``HHMM``,
  sometimes without leading zeros such as ``406`` or ``0``; confidence ``l/n/h``).
* ``region_csv``: the public region files (13 columns, no ``instrument``, ``HHMM`` zero-padded,
  confidence ``low/nominal/high``).
* ``lance_text``: the LANCE daily global text files (13 columns, ``acq_time`` ``HH:MM``).

The shape is detected from the header (and, between the two 13-column shapes, from the time
format).  Every row is validated; a bad row is counted, logged with its line number and returned
in :class:`FirmsReport`, never silently dropped and never fatal: a line that is not UTF-8 text, a
stray quote (FIRMS files never quote, so quotes are plain characters), an FRP beyond
:data:`MAX_FRP_MW`, a ``daynight`` other than ``D``/``N`` reject that row only.  Only a file
without a FIRMS header (empty, binary, an error page) is rejected whole.  Parsing is vectorised
(pandas).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from banet_ops.errors import DataFormatError
from banet_ops.regions import Region

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("latitude", "longitude", "acq_date", "acq_time", "frp")
OUTPUT_COLUMNS = ("latitude", "longitude", "acq_date", "acq_time", "frp", "satellite", "confidence", "daynight")
# satellite codes: the old numeric NOAA-20/21 codes and the current ones denote the same platforms
SATELLITE_CODES = {"1": "N20", "2": "N21", "N": "N", "N20": "N20", "N21": "N21", "NPP": "N", "Terra": "T", "Aqua": "A"}
MAX_LOGGED_ROWS = 20
# Far above any fire seen from space (the largest VIIRS detections are a few thousand MW), far
# below float32's limit (3.4e38), so an absurd value cannot become +inf in the cube.
MAX_FRP_MW = 1.0e6
NOT_UTF8 = "line is not UTF-8 text"
MAX_KEPT_REJECTS = 1000


@dataclass
class FirmsReport:
    """What one FIRMS file held: format, rows read, rows kept, rejected rows (line number, reason)."""

    source: str
    format: str = "unknown"
    n_rows: int = 0
    n_valid: int = 0
    n_rejected: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)

    def summary(self) -> str:
        return f"{self.source}: {self.format}, {self.n_rows} rows, {self.n_valid} valid, {self.n_rejected} rejected"


@dataclass
class FirmsTable:
    """Valid detections (columns :data:`OUTPUT_COLUMNS`; ``acq_date`` datetime64[D]) and the report."""

    detections: pd.DataFrame
    report: FirmsReport


def detect_format(columns: list[str], sample_times: pd.Series) -> str:
    """``area_api`` / ``region_csv`` / ``lance_text`` from the header (and the time format)."""
    if "instrument" in columns:
        return "area_api"
    if sample_times.astype(str).str.contains(":", regex=False).any():
        return "lance_text"
    return "region_csv"


def _parse_time(values: pd.Series) -> tuple[NDArray[np.int64], NDArray[np.bool_]]:
    """Minutes after midnight from ``HHMM`` (any zero-padding) or ``HH:MM``; and a validity mask."""
    number = pd.to_numeric(values.astype(str).str.replace(":", "", regex=False), errors="coerce").to_numpy(np.float64)
    ok = np.isfinite(number) & (number >= 0) & (number == np.floor(number))
    hh = np.where(ok, number // 100, -1)
    mm = np.where(ok, number % 100, -1)
    ok &= (hh <= 23) & (mm <= 59)
    return np.where(ok, hh * 60 + mm, -1).astype(np.int64), ok


def _numbers(frame: pd.DataFrame, name: str) -> NDArray[np.float64]:
    col = frame[name]
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(np.float64)
    return pd.to_numeric(col, errors="coerce").to_numpy(np.float64)


def parse_firms(text: str, source: str = "<firms>") -> FirmsTable:
    """Parse FIRMS CSV text; see the module docstring for the accepted shapes.

    Lines holding undecodable bytes (``surrogateescape`` code points, see :func:`read_firms_csv`)
    are rejected as rows and left out of the parse.
    """
    head, not_utf8 = _drop_undecodable_lines(text.lstrip("\ufeff").lstrip())
    frame = _read_frame(head, source)
    report = FirmsReport(source=source)
    n_fields = len(frame.columns)
    too_many, kept_lines, too_few = _line_numbers(head, n_fields, len(frame))
    report.format = detect_format(list(frame.columns), frame["acq_time"].head(200))
    report.n_rows = len(frame) + len(too_many) + len(not_utf8)

    lat = _numbers(frame, "latitude")
    lon = _numbers(frame, "longitude")
    frp = _numbers(frame, "frp")
    dates = pd.to_datetime(frame["acq_date"], format="%Y-%m-%d", errors="coerce")
    minutes, time_ok = _parse_time(frame["acq_time"])
    checks: list[tuple[NDArray[np.bool_], str]] = [
        (too_few, f"too few fields (expected {n_fields})"),
        (~((lat >= -90) & (lat <= 90)), "latitude not a number within [-90, 90]"),
        (~((lon >= -180) & (lon <= 180)), "longitude not a number within [-180, 180]"),
        (~np.asarray(dates.notna()), "acq_date not a YYYY-MM-DD date"),
        (~time_ok, "acq_time not HHMM or HH:MM"),
        (~(np.isfinite(frp) & (frp >= 0) & (frp <= MAX_FRP_MW)), f"frp not a number within [0, {MAX_FRP_MW:g}] MW"),
    ]
    if "daynight" in frame.columns:
        checks.append((~frame["daynight"].astype(str).str.strip().isin(("D", "N")).to_numpy(), "daynight not D or N"))
    bad_mask = _report_rejects(report, checks, too_many, kept_lines, not_utf8, n_fields)
    good = ~bad_mask
    out = pd.DataFrame(
        {
            "latitude": lat[good],
            "longitude": lon[good],
            "acq_date": dates[good].to_numpy().astype("datetime64[D]"),
            "acq_time": minutes[good],
            "frp": frp[good],
            "satellite": _satellites(_column(frame, "satellite")[good]),
            "confidence": _column(frame, "confidence")[good].str.lower().str[:1].to_numpy(object),
            "daynight": _column(frame, "daynight")[good].to_numpy(object),
        }
    )
    report.n_valid = len(out)
    return FirmsTable(detections=out, report=report)


def _read_frame(head: str, source: str) -> pd.DataFrame:
    """The rows as strings under lower-case column names; a file without a FIRMS header is refused."""
    first_line = head.split("\n", 1)[0].strip()
    if not first_line.lower().startswith(("latitude,", "country_id,")):
        raise DataFormatError(
            f"{source}: expected a FIRMS CSV header starting with 'latitude,', found {first_line[:120]!r}",
            hint="the service answered with an error message, or this is not a FIRMS file",
        )
    try:
        frame = pd.read_csv(
            io.StringIO(head),
            dtype={c: str for c in ("acq_date", "acq_time", "satellite", "confidence", "daynight", "version", "instrument")},
            keep_default_na=False,
            skipinitialspace=True,
            on_bad_lines="skip",
            quoting=csv.QUOTE_NONE,
        )
    except (pd.errors.ParserError, ValueError) as exc:
        raise DataFormatError(f"{source}: expected CSV, found unparsable content ({exc})") from None
    frame.columns = [c.strip().lower() for c in frame.columns]
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataFormatError(f"{source}: expected FIRMS columns {list(REQUIRED_COLUMNS)}, missing {missing} in header {first_line!r}")
    return frame


def _report_rejects(
    report: FirmsReport, checks: list[tuple[NDArray[np.bool_], str]], too_many: NDArray[np.int64], kept_lines: NDArray[np.int64],
    not_utf8: list[tuple[int, str]], n_fields: int,
) -> NDArray[np.bool_]:  # fmt: skip
    """Record the rejected rows (the first failed check names the reason) in ``report`` and log a few; the mask of bad parsed rows."""
    reasons = np.full(len(checks[0][0]), "", dtype=object)
    for bad, why in checks:
        reasons[bad & (reasons == "")] = why
    bad_mask: NDArray[np.bool_] = reasons != ""
    rejected = [(int(line), f"too many fields (expected {n_fields})") for line in too_many] + not_utf8
    rejected += [(int(line), str(why)) for line, why in zip(kept_lines[bad_mask], reasons[bad_mask])]
    rejected.sort()
    report.n_rejected = len(rejected)
    report.rejected = rejected[:MAX_KEPT_REJECTS]
    for line, why in rejected[:MAX_LOGGED_ROWS]:
        log.warning("%s line %d rejected: %s", report.source, line, why)
    if len(rejected) > MAX_LOGGED_ROWS:
        log.warning("%s: %d more rejected rows not shown", report.source, len(rejected) - MAX_LOGGED_ROWS)
    return bad_mask


def _line_numbers(text: str, n_fields: int, n_parsed: int) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.bool_]]:
    """File line numbers (header = 1) of the rows pandas skipped for too many fields, of the rows it
    kept, and which kept rows had too few fields; pandas skips malformed lines silently, so they are
    found by counting fields."""
    lines = text.splitlines()
    field_counts = np.fromiter((ln.count(",") + 1 for ln in lines[1:]), dtype=np.int64, count=len(lines) - 1)
    blank = np.fromiter((not ln.strip() for ln in lines[1:]), dtype=bool, count=len(lines) - 1)
    too_many = np.flatnonzero((field_counts > n_fields) & ~blank) + 2
    kept_lines = np.flatnonzero((field_counts <= n_fields) & ~blank) + 2
    too_few = np.isin(kept_lines, np.flatnonzero((field_counts < n_fields) & ~blank) + 2)
    if len(kept_lines) != n_parsed:
        # quoting or embedded commas made the count unreliable: fall back to positional numbering
        return np.array([], dtype=np.int64), np.arange(n_parsed) + 2, np.zeros(n_parsed, dtype=bool)
    return too_many, kept_lines, too_few


def _drop_undecodable_lines(text: str) -> tuple[str, list[tuple[int, str]]]:
    """``text`` without the lines holding undecodable bytes, and those lines as (line number, reason)."""
    if not any("\udc80" <= ch <= "\udcff" for ch in text):
        return text, []
    kept, bad = [], []
    for number, line in enumerate(text.split("\n"), start=1):
        if any("\udc80" <= ch <= "\udcff" for ch in line):
            bad.append((number, NOT_UTF8))
            kept.append("")  # a blank line keeps the numbering of the others
        else:
            kept.append(line)
    return "\n".join(kept), bad


def _satellites(codes: pd.Series) -> NDArray[np.object_]:
    return codes.map(SATELLITE_CODES).fillna(codes).to_numpy(object)


def _column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name in frame.columns:
        return frame[name].astype(str)
    return pd.Series([""] * len(frame), index=frame.index, dtype=object)


def read_firms_csv(path: str | Path) -> FirmsTable:
    """Read one FIRMS file (any of the three shapes); bad rows are reported, not raised."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(f"{p}: expected a FIRMS CSV file, found nothing at that path") from None
    # undecodable bytes are kept as lone surrogates: parse_firms rejects their lines only
    table = parse_firms(raw.decode("utf-8", errors="surrogateescape"), source=str(p))
    log.info("FIRMS %s", table.report.summary())
    return table


def merge_detections(tables: list[FirmsTable]) -> pd.DataFrame:
    """All detections of several files, the same detection (place, time, satellite, FRP) kept once."""
    frames = [t.detections for t in tables if len(t.detections)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in OUTPUT_COLUMNS})
    merged = pd.concat(frames, ignore_index=True)
    return merged.drop_duplicates(subset=["latitude", "longitude", "acq_date", "acq_time", "satellite", "frp"], ignore_index=True)


def grid_frp(detections: pd.DataFrame, region: Region, day: dt.date) -> NDArray[np.float32]:
    """Sum of FRP (MW) per region cell of the detections whose ``acq_date`` is ``day``."""
    rows, cols = region.shape
    if len(detections) == 0:
        return np.zeros((rows, cols), np.float32)
    on_day = detections["acq_date"].to_numpy().astype("datetime64[D]") == np.datetime64(day, "D")
    sel = detections[on_day]
    r, c, inside = region.rowcol(sel["longitude"].to_numpy(np.float64), sel["latitude"].to_numpy(np.float64))
    flat = r[inside] * cols + c[inside]
    total = np.bincount(flat, weights=sel["frp"].to_numpy(np.float64)[inside], minlength=rows * cols)
    return total.astype(np.float32).reshape(rows, cols)
