"""``python -m banet_ops.cli``: the same as the ``banet-ops`` console script."""

from banet_ops.cli import run

run()
