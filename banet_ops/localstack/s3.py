"""An S3-compatible server on 127.0.0.1 (moto's server mode), for tests and local trials."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

from banet_ops.errors import ConfigError
from banet_ops.localstack.postgres import free_port


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str
    process: subprocess.Popen[bytes]

    @property
    def env(self) -> dict[str, str]:
        """The standard AWS variables that point boto3, icechunk and GDAL at this server."""
        host = self.endpoint_url.removeprefix("http://")
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_S3_ENDPOINT": host,  # GDAL
            "AWS_HTTPS": "NO",
            "AWS_VIRTUAL_HOSTING": "FALSE",
            "AWS_ALLOW_HTTP": "true",  # object_store / icechunk
        }


@contextlib.contextmanager
def s3_server() -> Iterator[S3Server]:
    """Run ``moto_server`` on a free port for the duration of the block."""
    port = free_port()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except FileNotFoundError as exc:  # pragma: no cover
        raise ConfigError("expected moto[server] installed for the local S3 server") from exc
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            break
        time.sleep(0.1)
    else:
        proc.kill()
        raise ConfigError(f"moto server did not start on 127.0.0.1:{port} within 30 s")
    try:
        yield S3Server(endpoint_url=f"http://127.0.0.1:{port}", process=proc)
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)
