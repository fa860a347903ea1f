-- Base schema of banet-ops: PostGIS, schema `banet` and its tables (docs/contracts.md).
--
-- Every table has a natural or surrogate primary key so that a re-run of a task upserts instead
-- of duplicating, CHECK constraints for every enumerated or bounded column, GiST indexes on
-- geometries and B-tree/BRIN indexes on dates.  `burned_cell` is partitioned by year of burn
-- date (partitions are created by banet.ensure_burned_cell_partitions, migration 0002).

CREATE EXTENSION IF NOT EXISTS postgis;

CREATE SCHEMA IF NOT EXISTS banet;

COMMENT ON SCHEMA banet IS 'banet-ops: regions, cube days, models, runs, burned cells and fire events';

-- Regions: the R_{name}.json definition plus its footprint and grid shape.
CREATE TABLE IF NOT EXISTS banet.region (
    name        text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9_]{1,32}$'),
    bbox        geometry(Polygon, 4326) NOT NULL,
    pixel_size  double precision NOT NULL CHECK (pixel_size > 0),
    n_rows      integer NOT NULL CHECK (n_rows > 0),
    n_cols      integer NOT NULL CHECK (n_cols > 0),
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS region_bbox_gist ON banet.region USING gist (bbox);
COMMENT ON TABLE banet.region IS 'Regions (R_{name}.json): bbox [left, bottom, right, top] in EPSG:4326, 0.01 degree grids';

-- Source granules seen by ingestion (one row per file name, updated as it moves on).
CREATE TABLE IF NOT EXISTS banet.granule (
    id          bigserial PRIMARY KEY,
    file_name   text NOT NULL UNIQUE,
    product     text NOT NULL,
    day         date NOT NULL,
    size_bytes  bigint CHECK (size_bytes >= 0),
    checksum    text,
    source_url  text,
    status      text NOT NULL DEFAULT 'discovered'
                CHECK (status IN ('discovered', 'downloaded', 'ingested', 'rejected')),
    message     text,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS granule_product_day ON banet.granule (product, day);
CREATE INDEX IF NOT EXISTS granule_status ON banet.granule (status) WHERE status <> 'ingested';

-- One row per region-day committed to the cube.
CREATE TABLE IF NOT EXISTS banet.cube_day (
    region          text NOT NULL REFERENCES banet.region (name) ON UPDATE CASCADE,
    day             date NOT NULL,
    snapshot_id     text NOT NULL,
    granules        text[] NOT NULL DEFAULT '{}',
    valid_fraction  real NOT NULL CHECK (valid_fraction >= 0 AND valid_fraction <= 1),
    status          text NOT NULL CHECK (status IN ('complete', 'partial', 'empty')),
    committed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (region, day)
);
CREATE INDEX IF NOT EXISTS cube_day_day_brin ON banet.cube_day USING brin (day);

-- Model registry: weight files by content hash; at most one in production.
CREATE TABLE IF NOT EXISTS banet.model (
    id                text PRIMARY KEY,
    name              text NOT NULL,
    sha256            text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    weights_uri       text NOT NULL,
    status            text NOT NULL DEFAULT 'candidate'
                      CHECK (status IN ('candidate', 'production', 'retired')),
    config            jsonb NOT NULL DEFAULT '{}',
    data_window       jsonb,
    metrics           jsonb,
    created_at        timestamptz NOT NULL DEFAULT now(),
    promoted_at       timestamptz,
    promotion_reason  text
);
-- A unique index over a constant, restricted to production rows: a second one cannot exist.
CREATE UNIQUE INDEX IF NOT EXISTS model_one_production ON banet.model ((true)) WHERE status = 'production';

-- Inference runs; the UNIQUE key makes a re-run of the same inputs the same run.
CREATE TABLE IF NOT EXISTS banet.run (
    id                bigserial PRIMARY KEY,
    region            text NOT NULL REFERENCES banet.region (name) ON UPDATE CASCADE,
    product           text NOT NULL CHECK (product IN ('nrt', 'monthly')),
    target_date       date NOT NULL,
    window_start      date NOT NULL,
    window_end        date NOT NULL,
    model_key         text NOT NULL,
    model_ids         text[] NOT NULL DEFAULT '{}',
    cube_snapshot     text NOT NULL,
    status            text NOT NULL DEFAULT 'running'
                      CHECK (status IN ('running', 'succeeded', 'failed')),
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz,
    timings           jsonb,
    n_burned_cells    integer CHECK (n_burned_cells >= 0),
    burned_area_km2   double precision CHECK (burned_area_km2 >= 0),
    n_events          integer CHECK (n_events >= 0),
    software_version  text,
    outputs           jsonb,
    CHECK (window_start <= window_end),
    CHECK (finished_at IS NULL OR finished_at >= started_at),
    UNIQUE (region, product, target_date, model_key, cube_snapshot)
);
CREATE INDEX IF NOT EXISTS run_latest ON banet.run (region, product, target_date DESC) WHERE status = 'succeeded';

-- Per-pixel burned cells, one row per cell and burn date and product, partitioned by year.
CREATE TABLE IF NOT EXISTS banet.burned_cell (
    region      text NOT NULL REFERENCES banet.region (name) ON UPDATE CASCADE,
    product     text NOT NULL CHECK (product IN ('nrt', 'monthly')),
    burn_date   date NOT NULL,
    "row"       integer NOT NULL CHECK ("row" >= 0),
    col         integer NOT NULL CHECK (col >= 0),
    geom        geometry(Polygon, 4326) NOT NULL,
    confidence  real NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    run_id      bigint NOT NULL REFERENCES banet.run (id) ON DELETE CASCADE,
    area_km2    double precision NOT NULL CHECK (area_km2 >= 0),
    PRIMARY KEY (region, product, burn_date, "row", col)
) PARTITION BY RANGE (burn_date);
CREATE TABLE IF NOT EXISTS banet.burned_cell_default PARTITION OF banet.burned_cell DEFAULT;
CREATE INDEX IF NOT EXISTS burned_cell_geom_gist ON banet.burned_cell USING gist (geom);
CREATE INDEX IF NOT EXISTS burned_cell_burn_date_brin ON banet.burned_cell USING brin (burn_date);
CREATE INDEX IF NOT EXISTS burned_cell_run ON banet.burned_cell (run_id);
CREATE INDEX IF NOT EXISTS burned_cell_cell ON banet.burned_cell (region, "row", col);

-- Fire events: connected burned cells of one run, with their first and last burn dates.
CREATE TABLE IF NOT EXISTS banet.fire_event (
    id               bigserial PRIMARY KEY,
    run_id           bigint NOT NULL REFERENCES banet.run (id) ON DELETE CASCADE,
    region           text NOT NULL REFERENCES banet.region (name) ON UPDATE CASCADE,
    product          text NOT NULL CHECK (product IN ('nrt', 'monthly')),
    geom             geometry(MultiPolygon, 4326) NOT NULL,
    first_burn_date  date NOT NULL,
    last_burn_date   date NOT NULL,
    area_km2         double precision NOT NULL CHECK (area_km2 >= 0),
    n_cells          integer NOT NULL CHECK (n_cells > 0),
    mean_confidence  real CHECK (mean_confidence >= 0 AND mean_confidence <= 1),
    CHECK (first_burn_date <= last_burn_date)
);
CREATE INDEX IF NOT EXISTS fire_event_geom_gist ON banet.fire_event USING gist (geom);
CREATE INDEX IF NOT EXISTS fire_event_run ON banet.fire_event (run_id);
CREATE INDEX IF NOT EXISTS fire_event_dates ON banet.fire_event (region, product, first_burn_date);
