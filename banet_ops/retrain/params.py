"""The training and retraining parameters, declared once.

:class:`TrainingParams` holds what a dataset and a training run share; ``banet-ops train`` adds
its own options to it (``cli/retrain.py``), the ``banet_retrain`` DAG adds the retraining loop's
(:class:`RetrainParams`).  The DAG's Airflow ``Param``s and the CLI's flags are generated from
these models (``orchestration.dag_support.model_params``, ``cli.model_flags``), so a default, a
bound or a description is written here and nowhere else.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

MONTH = r"^\d{4}-(0[1-9]|1[0-2])$"
REGION_MONTH = r"^[A-Za-z0-9_]{1,32}:\d{4}-(0[1-9]|1[0-2])$"
Month = Annotated[str, StringConstraints(pattern=MONTH)]
RegionMonth = Annotated[str, StringConstraints(pattern=REGION_MONTH)]


class TrainingParams(BaseModel):
    """What a dataset and a training run are made with (the CLI and the retrain DAG alike)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    val: list[RegionMonth] = Field(default_factory=list, description="Region-months R:YYYY-MM held out for validation; empty: a seeded share.")
    val_fraction: float = Field(0.25, ge=0, lt=1, description="Share of the samples held out for validation when no region-month is.")
    tile: int = Field(128, ge=32, le=1024, description="Sample tile side, cells.")
    days: int = Field(64, ge=16, le=128, description="Days of the input window of a sample.")
    stride: int | None = Field(None, ge=8, description="Tile spacing, cells; default: 3/4 of the tile.")
    min_burned: int = Field(20, ge=0, description="Keep tiles with at least this many burned cells.")
    steps: int = Field(1000, ge=1, description="Optimiser steps (BA-Net trains by steps over sampled tiles, not epochs).")
    batch: int = Field(4, ge=1, description="Tiles per optimiser step.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    seed: int = Field(0, description="Seed of the sampling, the augmentation and random initial weights.")
    threads: int | None = Field(None, ge=1, description="torch CPU threads of a CPU trainer.")


class RetrainParams(TrainingParams):
    """The ``banet_retrain`` params (a manual run overrides any of them)."""

    regions: list[str] | None = Field(None, description="Regions to train on; default: every region file.")
    months: list[Month] | None = Field(None, description="Months YYYY-MM to label and sample; default: the month label_lag_months before the run.")
    label_lag_months: int = Field(2, ge=1, le=12, description="MCD64A1 of a month is published about this many months later.")
    from_scratch: bool = Field(False, description="Train from random weights instead of fine-tuning the production model.")
    max_samples: int | None = Field(None, ge=1, description="Cap on tiles per region-month.")
    eval_tile: int = Field(512, ge=32, description="Tile side of the evaluation's inference, cells.")
    metric: str = Field("dice", pattern=r"^[a-z_]+$", description="Metric the gate compares.")
    margin: float = Field(0.01, ge=0, description="The candidate must beat production by this much on the metric.")
    architectures: list[str] = Field(
        default_factory=lambda: ["banet"], min_length=1, description="Architectures to train (`banet-ops models archs`); each is registered and gated."
    )

    @field_validator("architectures")
    @classmethod
    def _architectures(cls, value: list[str]) -> list[str]:
        from banet_ops.models.zoo import get_spec

        for name in value:
            get_spec(name)
        if len(set(value)) != len(value):
            raise ValueError(f"expected distinct architectures, found {value}")
        return value
