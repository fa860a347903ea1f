"""Runtime settings, read from ``BANET_*`` environment variables (DESIGN §4).

Every setting has a default that works on a laptop with the embedded local stack; production
sets the URLs and secrets through the environment (in Airflow, Connections are mapped onto the
same names, see ``banet_ops.orchestration.connections``).  Secrets are :class:`pydantic.SecretStr` and never
appear in ``repr``, logs or exceptions.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from banet_ops.errors import ConfigError

PACKAGE_REGIONS_DIR = Path(__file__).resolve().parent / "data" / "regions"
LAADS_ARCHIVE_URL = "https://ladsweb.modaps.eosdis.nasa.gov/archive/allData"
CMR_URL = "https://cmr.earthdata.nasa.gov/search"
FIRMS_URL = "https://firms.modaps.eosdis.nasa.gov"


CHECKOUT = Path(__file__).resolve().parents[1]
SETTINGS_FILE_NAME = "settings.env"


def default_home() -> Path:
    """Root for local state: ``$BANET_HOME``, else ``.banet`` of the git checkout this package runs from, else ``~/.banet``.

    The same rule holds inside and outside ``make`` (the Makefile's default is the checkout's
    ``.banet`` too), so a command finds the demo's state however it is started.
    """
    if os.environ.get("BANET_HOME"):
        return Path(os.environ["BANET_HOME"]).expanduser().resolve()
    if (CHECKOUT / ".git").exists() and (CHECKOUT / "pyproject.toml").is_file():
        return CHECKOUT / ".banet"
    return (Path.home() / ".banet").resolve()


def settings_file(home: Path | None = None) -> Path:
    """``$BANET_HOME/settings.env``: settings written by ``banet-ops demo`` (``KEY=value`` lines); the environment wins."""
    return (home or default_home()) / SETTINGS_FILE_NAME


def write_settings_file(values: dict[str, str], home: Path | None = None) -> Path:
    """Write ``values`` (``BANET_*`` names, no secrets) as the settings file, atomically."""
    from banet_ops.util import atomic_write

    return atomic_write(settings_file(home), "".join(f"{key}={value}\n" for key, value in sorted(values.items())))


class Settings(BaseSettings):
    """All ``BANET_*`` settings. Field docs are the user documentation (``banet-ops settings``)."""

    model_config = SettingsConfigDict(env_prefix="BANET_", extra="ignore", frozen=True, hide_input_in_errors=True)  # values may hold secrets

    home: Path = Field(default_factory=default_home, description="Root for local state: PostGIS cluster, default cube/products folders, download cache.")
    database_url: SecretStr | None = Field(
        None, description="SQLAlchemy URL of the PostGIS database. Unset: the local cluster started by `make demo`/`banet-ops stack start`."
    )
    cube_root: str | None = Field(None, description="Where region cubes live: `s3://bucket/prefix` or a local path. Unset: `$BANET_HOME/cube`.")
    products_root: str | None = Field(
        None, description="Where COGs, quicklooks and STAC items go: `s3://bucket/prefix` or a local path. Unset: `$BANET_HOME/products`."
    )
    archive_url: str = Field(
        LAADS_ARCHIVE_URL, description="LAADS archive root, or `file:///path` of a mirror with the `{set}/{PRODUCT}/{YYYY}/{DDD}/{file}` layout."
    )
    cmr_url: str = Field(CMR_URL, description="NASA CMR search root.")
    firms_url: str = Field(FIRMS_URL, description="FIRMS API root, or `file:///path` of a folder of FIRMS CSV files.")
    earthdata_token: SecretStr | None = Field(None, description="Earthdata Login bearer token for LAADS downloads.")
    firms_map_key: SecretStr | None = Field(None, description="FIRMS MAP_KEY for the area API.")
    regions_dir: Path = Field(PACKAGE_REGIONS_DIR, description="Folder of `R_{name}.json` region files; the DAGs are generated from it.")
    cache_dir: Path | None = Field(None, description="Download cache. Unset: `$BANET_HOME/cache`.")
    viirs_products: Annotated[tuple[str, ...], NoDecode] = Field(
        ("VNP02MOD", "VJ102MOD"), description="L1B products to ingest (their 03MOD geolocation is paired automatically)."
    )
    firms_sources: Annotated[tuple[str, ...], NoDecode] = Field(
        ("VIIRS_SNPP_NRT", "VIIRS_NOAA20_NRT"), description="FIRMS sources whose detections make the FRP band."
    )
    http_concurrency: int = Field(4, ge=1, le=64, description="Concurrent downloads per host.")
    http_retries: int = Field(5, ge=0, le=20, description="Retries for 429/5xx/timeouts, with exponential back-off and jitter.")
    http_timeout_s: float = Field(120.0, gt=0, description="Timeout for one HTTP request, seconds.")
    storage_timeout_s: float = Field(
        900.0, gt=0, description="Longest wait for one cube storage operation (open, write and commit a day), seconds: then a retryable error."
    )
    # inference
    weights: Annotated[tuple[Path, ...], NoDecode] = Field(
        (), description="Weight files used when the registry has no production model (`,`-separated in env)."
    )
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Inference device.")
    burn_threshold: float = Field(0.5, gt=0, le=1, description="Confidence at or above which a pixel is burned.")
    water_mask: bool = Field(False, description="Unburn permanent water in products (water index of the window's M5/M7/M10, banet_ops.water).")
    tiling: Literal["published", "fast"] = Field(
        "published", description="Inference tiling preset: `published` (the published BA-Net grid, exact) or `fast` (256-px tiles, cosine blending)."
    )
    tile_size: int | None = Field(None, ge=32, description="Override of the tiling preset's tile size in pixels (multiple of 32). Unset: the preset's.")
    tile_overlap: int | None = Field(None, ge=0, description="Override of the tiling preset's tile overlap, pixels. Unset: the preset's.")
    min_window_days: int = Field(
        48, ge=1, le=64, description="Fewest ingested days of the 64-day window for an NRT/monthly product; fewer: the run is refused (skipped)."
    )
    batch_size: int = Field(8, ge=1, description="Tiles per inference batch.")
    # orchestration
    infer_backend: Literal["local", "kubernetes"] = Field(
        "local", description="Where `banet-ops infer` and `train` run from Airflow: a subprocess on the worker or a GPU pod."
    )
    k8s_pod_templates: Path | None = Field(
        None, description="Folder of the `inference.yaml` and `training.yaml` pod templates the Helm chart renders (Kubernetes backend)."
    )
    k8s_startup_timeout_s: int = Field(900, ge=30, description="How long a GPU pod may stay Pending (node scale-up), seconds.")
    monthly_lag_days: int = Field(10, ge=0, le=60, description="Days after a month ends before its monthly product runs.")
    event_max_gap_days: int = Field(
        5, ge=0, le=60, description="Fire events: 8-neighbour burned cells whose burn dates differ by at most this many days join one event (docs/analysts.md)."
    )
    # map (banet-ops serve, the Airflow "Burned areas" page)
    web_database_url: SecretStr | None = Field(
        None, description="URL of a read-only (banet_reader) login for the map and OGC API. Unset: BANET_DATABASE_URL, restricted by `web_db_role`."
    )
    web_db_role: str = Field("banet_reader", description="Role the map's database sessions switch to (read-only); empty: the login's own role.")
    web_airflow_url: str = Field("http://127.0.0.1:8080", description="Airflow UI the standalone map links DAG runs to.")
    # the Airflow REST API (`banet-ops backfill`)
    airflow_url: str = Field("http://127.0.0.1:8080", description="Airflow api-server root used by `banet-ops backfill`.")
    airflow_token: SecretStr | None = Field(None, description="Bearer token for the Airflow REST API. Unset: one from `/auth/token` (the local deployment's).")
    airflow_username: str | None = Field(None, description="Airflow user for `POST /auth/token` when no token is set.")
    airflow_password: SecretStr | None = Field(None, description="Password of `BANET_AIRFLOW_USERNAME`.")

    @field_validator("cube_root", "products_root")
    @classmethod
    def _root_ok(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("s3://") and len(value) <= len("s3://"):
            raise ConfigError(f"expected s3://bucket[/prefix], found {value!r}", hint="set a bucket name")
        if value is not None and "://" in value and "@" in value.split("://", 1)[1].split("/", 1)[0]:
            shown = value.split("://", 1)[0] + "://***@" + value.split("://", 1)[1].split("@", 1)[1]
            raise ConfigError(f"expected a root without credentials, found {shown}", hint="pass credentials as AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")
        return value

    @field_validator("weights", "viirs_products", "firms_sources", mode="before")
    @classmethod
    def _split_weights(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(p.strip() for p in value.split(",") if p.strip())
        return value

    # resolved locations -------------------------------------------------------------------
    @property
    def resolved_cube_root(self) -> str:
        return self.cube_root or str(self.home / "cube")

    @property
    def resolved_products_root(self) -> str:
        return self.products_root or str(self.home / "products")

    @property
    def resolved_cache_dir(self) -> Path:
        return self.cache_dir or self.home / "cache"

    def resolved_database_url(self) -> str:
        """The database URL: the setting, else the local cluster's URL file, else an error."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        url_file = self.home / "pg" / "url"
        if url_file.is_file():
            return url_file.read_text().strip()
        raise ConfigError(
            "expected BANET_DATABASE_URL or a running local stack, found neither",
            hint="set BANET_DATABASE_URL, or run `banet-ops stack start`",
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment, then ``$BANET_HOME/settings.env``, read once per process (tests call ``get_settings.cache_clear()``)."""
    path = settings_file()
    return Settings(_env_file=path if path.is_file() else None)  # type: ignore[call-arg]
