"""A job run in a child process with the crash points of ``BANET_CRASH_AT`` armed.

``python tests/faults/_child.py publish '<json>'`` publishes the synthetic product the JSON
names (database URL, products root, region, seed, snapshot); ``python tests/faults/_child.py
cli ingest ...`` runs the ``banet-ops`` command line.  The exit status is the job's.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, as pytest's pythonpath

from faults.harness import install


def publish(spec: dict) -> int:
    from banet_ops.publish import publish_product
    from banet_ops.settings import Settings
    from faults.scenarios import product_for

    settings = Settings(home=spec["home"], database_url=spec["db_url"], products_root=spec["root"])
    publish_product(product_for(spec), settings=settings)
    return 0


def main(argv: list[str]) -> int:
    install()
    if argv[0] == "publish":
        return publish(json.loads(argv[1]))
    if argv[0] == "cli":
        from banet_ops.cli import main as cli_main

        return cli_main(argv[1:])
    raise SystemExit(f"unknown job {argv[0]!r}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
