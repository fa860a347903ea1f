"""BA-Net model and weight files."""

from banet_ops.models.banet import PARAMETER_COUNT, BANet, count_parameters, fuse_for_inference
from banet_ops.models.weights import init_weights, load_weights, save_weights

__all__ = ["PARAMETER_COUNT", "BANet", "count_parameters", "fuse_for_inference", "init_weights", "load_weights", "save_weights"]
