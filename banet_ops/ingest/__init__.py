"""Ingestion: VIIRS L1B swaths, legacy gridded HDF4 and FIRMS fires → the daily image of a region.

* ``readers.viirs_l1b.read_granule(l1b, geo, bbox=...)`` → ``SwathGranule``
* ``readers.legacy_hdf4.read_legacy_overpass(files, region)`` → ``LegacyOverpass``
* ``readers.firms_csv.read_firms_csv(path)`` → ``FirmsTable`` (detections + ``FirmsReport``)
* ``gridding.grid_granule(granule, region)`` → sparse ``Observations`` on the region grid
* ``composite.Compositor`` (smallest sensor zenith wins) and ``composite.mir_reflectance``
* ``stages``: discover → fetch → composite → commit, the one path of ``banet-ops ingest`` and the DAG
* ``pipeline.build_daily_image`` / ``pipeline.ingest_day`` (docs/contracts.md)
"""
