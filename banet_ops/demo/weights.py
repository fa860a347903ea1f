"""Weights for the demo.

Preference order: weights shipped in the package (``banet_ops/data/weights/``, trained on the
synthetic scenario only and labelled so in their file name and metadata), else a cached
freshly initialised model (the pipeline still runs end to end; the map is then meaningless).
Neither is fit for real fire mapping: production uses the registry's production model.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from banet_ops.demo import DemoConfig

log = logging.getLogger(__name__)
PACKAGED = Path(__file__).resolve().parents[1] / "data" / "weights" / "banet_synthetic_demo_ONLY.pth"


def demo_weights(folder: Path, config: DemoConfig) -> Path:
    """Path of the weights the demo uses (created on first use)."""
    if PACKAGED.is_file():
        print(f"      using {PACKAGED.name} (trained on synthetic data only)", flush=True)
        return PACKAGED
    from banet_ops.models.weights import init_weights

    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"banet_random_init_seed{config.seed}.pth"
    if not path.is_file():
        init_weights(path, seed=config.seed)
    print(f"      no packaged demo weights: using a freshly initialised model ({path}); burned areas will be meaningless", flush=True)
    return path
