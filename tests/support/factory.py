"""Starting voxbox servers for tests on one backend (fresh store each, or a shared one)."""

from __future__ import annotations

import secrets
from pathlib import Path

from support.backends import REDIS_URL, PostgresDatabases, check_redis
from support.s3 import MotoS3, fake_aws_env
from support.server import ServerProcess

S3_BUCKET = "voxbox-test"

# High limits for shared servers: many tests log in from 127.0.0.1 within one window. The rate
# limit tests start servers of their own with low limits.
GENEROUS_LIMITS = {
    "VOXBOX_LIMITS__LOGIN_ATTEMPTS_PER_HANDLE": "1000",
    "VOXBOX_LIMITS__LOGIN_ATTEMPTS_PER_ADDRESS": "100000",
    "VOXBOX_LIMITS__REGISTRATIONS_PER_ADDRESS": "100000",
    "VOXBOX_LIMITS__SEND_BURST": "100000",
    "VOXBOX_LIMITS__SENDS_PER_HOUR": "1000000",
}


class ServerFactory:
    """Starts servers on one backend and stops them all at `close()`."""

    def __init__(
        self,
        backend: str,
        pg: PostgresDatabases,
        base_dir: Path,
        *,
        name: str = "server",
        s3: MotoS3 | None = None,
    ) -> None:
        self.backend = backend
        self.pg = pg
        self.s3 = s3
        self.base_dir = base_dir
        self.name = name
        self.servers: list[ServerProcess] = []

    def backend_env(self) -> dict[str, str | None]:
        """Settings for a fresh store on this backend.

        sqlite: SQLite, in-process events, blobs in the data dir. postgres: a new PostgreSQL
        database, Redis, and blobs in S3 (moto) under a prefix of its own.
        """
        if self.backend == "sqlite":
            return {
                "VOXBOX_DATABASE_URL": None,
                "VOXBOX_REDIS_URL": None,
                "VOXBOX_STORAGE_URL": None,
            }
        check_redis()
        assert self.s3 is not None, "the postgres backend stores blobs in S3"
        return {
            "VOXBOX_DATABASE_URL": self.pg.create(),
            "VOXBOX_REDIS_URL": REDIS_URL,
            "VOXBOX_STORAGE_URL": self.s3.storage_url(S3_BUCKET, secrets.token_hex(6)),
            **fake_aws_env(),
        }

    def start(
        self,
        env: dict[str, str | None] | None = None,
        *,
        share_store_with: ServerProcess | None = None,
        serve_args: tuple[str, ...] = (),
        worker: bool = False,
    ) -> ServerProcess:
        """A new running server (or `voxbox worker`, see ServerProcess). `share_store_with`:
        same database, Redis and blob storage (scale-out)."""
        settings: dict[str, str | None] = {"VOXBOX_REGISTRATION": "open", **GENEROUS_LIMITS}
        if share_store_with is not None:
            shared = ("VOXBOX_DATABASE_URL", "VOXBOX_REDIS_URL", "VOXBOX_STORAGE_URL")
            settings.update(
                {
                    k: v
                    for k, v in share_store_with.settings.items()
                    if k in shared or k.startswith("AWS_")
                }
            )
        else:
            settings.update(self.backend_env())
        settings.update(env or {})
        n = len(self.servers) + 1
        name = f"{'worker' if worker else self.name}-{self.backend}-{n}"
        data_dir = self.base_dir / f"{name}-{secrets.token_hex(3)}"
        srv = ServerProcess(data_dir, settings, name=name, serve_args=serve_args, worker=worker)
        self.servers.append(srv)
        srv.start()
        return srv

    def close(self) -> None:
        for srv in self.servers:
            srv.stop()
        self.servers.clear()
