"""A real S3 API endpoint for tests: moto's standalone server, in a thread, on 127.0.0.1.

    with moto_server() as s3:                  # or: s3 = start_moto(); ...; s3.stop()
        s3.create_bucket("voxbox-test")
        url = s3.storage_url("voxbox-test", "run1")   # for VOXBOX_STORAGE_URL
        env = fake_aws_env()                         # for a server subprocess's environment

boto3 must never reach real AWS: every client gets the endpoint explicitly, the credentials are
fake, and EC2 instance metadata lookups are disabled (`fake_aws_env`). Moto keeps its state in
the memory of this process; use a bucket per session and a prefix per test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
FAKE_ACCESS_KEY = "testing"
FAKE_SECRET_KEY = "testing"

# Variables that could point boto3 elsewhere (a developer's profile, a real role, a proxy).
_AWS_VARS_TO_CLEAR = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_CA_BUNDLE",
)


def fake_aws_env() -> dict[str, str | None]:
    """Environment for a process that talks to the moto server: fake credentials, no metadata
    service, no shared config files, no proxy for 127.0.0.1. None means "unset it"."""
    no_proxy = ",".join(filter(None, [os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"]))
    env: dict[str, str | None] = dict.fromkeys(_AWS_VARS_TO_CLEAR)
    env.update(
        {
            "AWS_ACCESS_KEY_ID": FAKE_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "NO_PROXY": no_proxy,
            "no_proxy": no_proxy,
        }
    )
    return env


def apply_fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Put `fake_aws_env()` into this process's environment until the monkeypatch is undone."""
    for name, value in fake_aws_env().items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@dataclass
class MotoS3:
    """A running moto server; `endpoint_url` is like http://127.0.0.1:PORT."""

    endpoint_url: str
    _server: ThreadedMotoServer

    def client(self) -> Any:
        """A boto3 S3 client for test set-up, with explicit fake credentials."""
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=FAKE_ACCESS_KEY,
            aws_secret_access_key=FAKE_SECRET_KEY,
        )

    def create_bucket(self, name: str) -> str:
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def storage_url(self, bucket: str, prefix: str = "") -> str:
        """The VOXBOX_STORAGE_URL of `bucket`/`prefix` on this server."""
        endpoint = quote(self.endpoint_url, safe="")
        return f"s3://{bucket}/{prefix}?endpoint={endpoint}&region={REGION}"

    def stop(self) -> None:
        self._server.stop()


def start_moto() -> MotoS3:
    """Start a moto S3 server on a free port of 127.0.0.1; call `.stop()` when done."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return MotoS3(f"http://{host}:{port}", server)


@contextmanager
def moto_server() -> Iterator[MotoS3]:
    s3 = start_moto()
    try:
        yield s3
    finally:
        s3.stop()
