"""Inference: tiling engine, NRT/monthly products and the `banet-ops infer` run."""
