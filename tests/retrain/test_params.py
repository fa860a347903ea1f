"""The training parameters are declared once (banet_ops/retrain/params.py): the retrain DAG's Params
and the `banet-ops train` flags are generated from the models, defaults and bounds included."""

from __future__ import annotations

import argparse

import pytest

from banet_ops.cli.model_flags import add_model_flags
from banet_ops.cli.retrain import TrainArgs
from banet_ops.retrain.params import RetrainParams, TrainingParams


def test_dag_params_are_the_retrain_model() -> None:
    from airflow.sdk.definitions.param import ParamValidationError

    from banet_ops.orchestration.dag_support import model_params

    params = model_params(RetrainParams)
    assert list(params) == list(RetrainParams.model_fields)
    defaults = RetrainParams().model_dump()
    assert {name: p.value for name, p in params.items()} == defaults
    assert params["steps"].description == RetrainParams.model_fields["steps"].description
    # the model's bounds and patterns hold in the Airflow form too
    assert params["steps"].resolve(5) == 5
    for name, bad in (("steps", 0), ("val", ["R-2020-07"]), ("months", ["2020-13"]), ("stride", 4), ("lr", 0)):
        with pytest.raises(ParamValidationError):
            params[name].resolve(bad)
    assert params["stride"].resolve(None) is None and params["months"].resolve(["2020-07"]) == ["2020-07"]


def _parse(*argv: str) -> TrainArgs:
    parser = argparse.ArgumentParser()
    add_model_flags(parser, TrainArgs)
    return TrainArgs.model_validate(vars(parser.parse_args(list(argv))))


def test_cli_flags_are_the_train_model() -> None:
    parser = argparse.ArgumentParser()
    add_model_flags(parser, TrainArgs)
    flags = {a.dest for a in parser._actions if a.dest != "help"}
    assert flags == set(TrainArgs.model_fields) and set(TrainingParams.model_fields) <= flags
    args = _parse("--manifest", "m.json")
    shared = TrainingParams.model_fields
    assert {k: getattr(args, k) for k in shared} == TrainingParams().model_dump()  # defaults from the model
    args = _parse("--region-month", "PI:2024-07", "--region-month", "PT:2024-08", "--val", "PI:2024-09", "--steps", "7",
                  "--lr", "3e-4", "--no-resume", "--device", "cpu", "--stride", "16")
    assert args.region_month == ["PI:2024-07", "PT:2024-08"] and args.val == ["PI:2024-09"]
    assert (args.steps, args.lr, args.resume, args.device, args.stride) == (7, 3e-4, False, "cpu", 16)
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        _parse("--manifest", "m.json", "--steps", "0")
    with pytest.raises(SystemExit):
        _parse("--device", "tpu")
