"""FIRMS CSV: the three shapes, row validation with line numbers, the real 47k-row file, FRP gridding."""

from __future__ import annotations

import datetime as dt
import logging
import time
from pathlib import Path

import numpy as np
import pytest

from banet_ops.errors import DataFormatError
from banet_ops.ingest.readers.firms_csv import grid_frp, merge_detections, parse_firms, read_firms_csv
from banet_ops.regions import Region

AREA = """latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,instrument,confidence,version,bright_ti5,frp,daynight
40.10001,-3.50001,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,3.2,N
40.10002,-3.50002,330.1,0.4,0.5,2024-07-01,406,N20,VIIRS,h,2.0NRT,299.0,1.5,D
40.10003,-3.50003,330.1,0.4,0.5,2024-07-01,0,1,VIIRS,l,2.0NRT,299.0,0.0,N
"""
REGION = """latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight
44.99969,28.10388,296.54,0.52,0.5,2022-07-06,0048,N,nominal,2.0NRT,286.43,1.03,N
"""
LANCE = """latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight
66.19901,70.98853,331.93,0.55,0.68,2023-11-09,00:34,N,nominal,2.0NRT,256.49,4.26,N
51.10318,18.93911,301.65,0.41,0.37,2023-11-09,13:41,1,high,2.0NRT,275.63,1.54,D
"""


def test_area_api_times_without_leading_zeros() -> None:
    t = parse_firms(AREA, "area.csv")
    assert t.report.format == "area_api" and t.report.n_valid == 3 and t.report.n_rejected == 0
    assert list(t.detections["acq_time"]) == [42, 4 * 60 + 6, 0]
    assert list(t.detections["satellite"]) == ["N", "N20", "N20"]  # the old code '1' is NOAA-20
    assert list(t.detections["confidence"]) == ["n", "h", "l"]


def test_region_csv_and_lance_text() -> None:
    r = parse_firms(REGION, "region.csv")
    assert r.report.format == "region_csv" and list(r.detections["acq_time"]) == [48]
    lance = parse_firms(LANCE, "lance.txt")
    assert lance.report.format == "lance_text"
    assert list(lance.detections["acq_time"]) == [34, 13 * 60 + 41]
    assert list(lance.detections["confidence"]) == ["n", "h"]
    assert lance.detections["acq_date"].iloc[0] == np.datetime64("2023-11-09")


def test_bad_rows_are_counted_reported_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    lines = AREA.splitlines()
    bad = [
        "95.0,-3.5,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,3.2,N",  # line 5: latitude
        "40.1,-3.5,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,-1,N",  # line 6: negative frp
        "40.1,-3.5,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,nan,N",  # line 7: frp not finite
        "40.1,-3.5,330.1,0.4,0.5,2024-02-30,0042,N,VIIRS,n,2.0NRT,299.0,3.2,N",  # line 8: date
        "40.1,-3.5,330.1,0.4,0.5,2024-07-01,2460,N,VIIRS,n,2.0NRT,299.0,3.2,N",  # line 9: time
        "40.1,-3.5,330.1,0.4,0.5",  # line 10: too few fields
        "40.1,-3.5,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,3.2,N,extra",  # line 11
        "40.1,abc,330.1,0.4,0.5,2024-07-01,0042,N,VIIRS,n,2.0NRT,299.0,3.2,N",  # line 12: longitude
    ]
    text = "\n".join([*lines, *bad, lines[1]]) + "\n"
    with caplog.at_level(logging.WARNING):
        t = parse_firms(text, "mixed.csv")
    assert t.report.n_rows == 12 and t.report.n_valid == 4 and t.report.n_rejected == 8
    lines_rejected = dict(t.report.rejected)
    assert sorted(lines_rejected) == list(range(5, 13))
    assert "latitude" in lines_rejected[5] and "frp" in lines_rejected[6] and "frp" in lines_rejected[7]
    assert "acq_date" in lines_rejected[8] and "acq_time" in lines_rejected[9]
    assert "too few fields" in lines_rejected[10] and "too many fields" in lines_rejected[11]
    assert "longitude" in lines_rejected[12]
    assert "mixed.csv line 9 rejected: acq_time" in caplog.text


@pytest.mark.parametrize("body", ["Invalid MAP_KEY.", "Exceeding allowed transaction limit.", "<!DOCTYPE html><html>", ""])
def test_error_bodies_are_not_csv(body: str) -> None:
    with pytest.raises(DataFormatError, match="expected a FIRMS CSV header"):
        parse_firms(body, "answer.csv")


def test_header_only_means_no_detection() -> None:
    t = parse_firms(AREA.splitlines()[0] + "\n", "empty.csv")
    assert t.report.n_rows == 0 and len(t.detections) == 0


def test_missing_required_column() -> None:
    with pytest.raises(DataFormatError, match=r"missing \['frp'\]"):
        parse_firms("latitude,longitude,acq_date,acq_time\n1,2,2024-01-01,0000\n", "x.csv")


def test_real_lance_file_is_fast_and_complete(real_firms: Path) -> None:
    t0 = time.perf_counter()
    t = read_firms_csv(real_firms)
    elapsed = time.perf_counter() - t0
    assert t.report.format == "lance_text"
    assert t.report.n_rows == 47906 and t.report.n_valid == 47906 and t.report.n_rejected == 0
    assert set(t.detections["satellite"]) == {"N20"}
    assert elapsed < 5.0, f"parsing 47,906 rows took {elapsed:.2f}s"
    # FRP on a grid = the sum of the detections inside it, computed independently
    region = Region(name="AF", bbox=(10.0, 0.0, 40.0, 20.0), pixel_size=0.01)
    frp = grid_frp(t.detections, region, dt.date(2023, 11, 9))
    d = t.detections
    inside = (d.latitude > 0) & (d.latitude < 20) & (d.longitude > 10) & (d.longitude < 40)
    assert float(frp.sum()) == pytest.approx(float(d.frp[inside].sum()), rel=1e-5)
    assert float(grid_frp(t.detections, region, dt.date(2023, 11, 10)).sum()) == 0


def test_same_detection_in_two_files_counts_once() -> None:
    lance = parse_firms(
        "latitude,longitude,bright_ti4,scan,track,acq_date,acq_time,satellite,confidence,version,bright_ti5,frp,daynight\n"
        "40.10002,-3.50002,330.1,0.4,0.5,2024-07-01,04:06,1,high,2.0NRT,299.0,1.5,D\n",
        "lance.txt",
    )
    area = parse_firms(AREA, "area.csv")
    merged = merge_detections([area, lance])
    assert len(merged) == 3
    region = Region(name="B", bbox=(-4.0, 40.0, -3.0, 41.0), pixel_size=0.01)
    assert float(grid_frp(merged, region, dt.date(2024, 7, 1)).sum()) == pytest.approx(3.2 + 1.5)
