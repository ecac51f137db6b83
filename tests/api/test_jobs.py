"""Background jobs across processes (PostgreSQL + Redis + S3): `voxbox serve --no-jobs` takes
the requests, `voxbox worker` processes run the jobs. A job is claimed by one worker at a time,
and a worker's kill -9 leaves its job to another once the lease is over."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from support.api import client_id, ok
from support.audio import decoded_duration, wav_bytes
from support.backends import query_pg
from support.server import ServerProcess
from support.tus import upload

on_postgres = pytest.mark.parametrize("backend", ["postgres"], indirect=True)

# Long enough to be transcoded by a job that runs for seconds, small enough to upload at once.
LONG_WAV = wav_bytes(600, rate=8000)
JOBS = {"jobs__lease_seconds": "4", "limits__inline_max_seconds": "1"}

T = TypeVar("T")


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = 30.0) -> T:
    """Poll ``check`` until it returns something (the database has no event to await)."""
    async with asyncio.timeout(timeout):
        while True:
            found = await check()
            if found:
                return found
            await asyncio.sleep(0.05)


async def media_jobs(server: Any) -> list[dict[str, Any]]:
    return await query_pg(
        server.settings,
        "SELECT id, status::text AS state, attempts, args->>'media_id' AS media_id "
        "FROM procrastinate_jobs WHERE task_name = 'process_media' ORDER BY id",
    )


def send_long_file(user: Any, chat_id: str, name: str) -> dict[str, Any]:
    uid = upload(user.http, LONG_WAV, filename=name)
    body = {"client_id": client_id(), "kind": "audio", "upload_id": uid}
    message = ok(user.http.post(f"/chats/{chat_id}/messages", json=body), 201)
    assert message["media"]["state"] == "processing"
    return message


@on_postgres
async def test_a_job_survives_its_workers_kill_9(make_server, make_user) -> None:
    api = make_server(serve_args=("--no-jobs",), **JOBS)
    first = make_server(share_store_with=api, worker=True, **JOBS)
    alice, bob = make_user(server=api), make_user(server=api)
    chat_id = alice.direct_with(bob)
    async with bob.events() as ev:
        message = send_long_file(alice, chat_id, "long.wav")

        async def running() -> list[dict[str, Any]]:
            return [job for job in await media_jobs(api) if job["state"] == "doing"]

        await until(running)
        first.kill()  # SIGKILL, mid-transcode
        second = make_server(share_store_with=api, worker=True, **JOBS)
        ready = await ev.next_event("media.ready", timeout=60)
        assert ready["data"]["id"] == message["media"]["id"]
        assert abs(ready["data"]["duration_ms"] - 600_000) <= 100
        check = alice.send(chat_id, "after")
        await ev.next_event("message.created", where=lambda e: e["data"]["id"] == check["id"])
        assert ev.pending("media.ready") == []  # once, not once per run

    # The same job, run a second time (by the second worker), and done: two runs ended.
    assert [(j["state"], j["attempts"]) for j in await media_jobs(api)] == [("succeeded", 2)]
    assert "process_media" in second.log_path.read_text()
    ogg = bob.http.get(f"/media/{message['media']['id']}/content", params={"format": "ogg"})
    assert abs(decoded_duration(ogg.content) - 600) < 0.5

    listed = api.run_cli("admin", "jobs")
    assert listed.returncode == 0, listed.stderr
    assert "process_media" in listed.stdout
    assert "Jobs: 0 queued, 0 running," in listed.stdout
    assert ", 0 failed," in listed.stdout
    retried = next(line for line in listed.stdout.splitlines() if "process_media" in line)
    assert "succeeded" in retried and message["media"]["id"] in retried


@on_postgres
async def test_two_workers_never_both_process_one_media(make_server, make_user) -> None:
    """Two workers and two long files, then a third worker joining while they run: each file is
    processed once, and each recipient gets media.ready once per file."""
    api = make_server(serve_args=("--no-jobs",), **JOBS)
    make_server(share_store_with=api, worker=True, **JOBS)
    make_server(share_store_with=api, worker=True, **JOBS)
    alice, bob = make_user(server=api), make_user(server=api)
    chat_id = alice.direct_with(bob)
    async with bob.events() as ev:
        sent = [send_long_file(alice, chat_id, f"long-{i}.wav") for i in range(2)]

        async def both_running() -> bool:
            return [j["state"] for j in await media_jobs(api)] == ["doing", "doing"]

        await until(both_running)
        make_server(share_store_with=api, worker=True, **JOBS)
        ready = [await ev.next_event("media.ready", timeout=60) for _ in sent]
        assert {e["data"]["id"] for e in ready} == {m["media"]["id"] for m in sent}
        check = alice.send(chat_id, "after")
        await ev.next_event("message.created", where=lambda e: e["data"]["id"] == check["id"])
        assert ev.pending("media.ready") == []

    jobs = await media_jobs(api)
    assert [(j["state"], j["attempts"]) for j in jobs] == [("succeeded", 1)] * 2
    starts = await query_pg(
        api.settings,
        "SELECT count(*) AS n FROM procrastinate_events JOIN procrastinate_jobs job "
        "ON job.id = job_id WHERE type = 'started' AND task_name = 'process_media'",
    )
    assert starts == [{"n": 2}]


@on_postgres
async def test_periodic_work_runs_once_per_period_for_the_deployment(make_server) -> None:
    """Two serving processes and a worker all run jobs; housekeeping, due every second, runs
    once a second, not once per process."""
    every_second = {"jobs__housekeeping_cron": "* * * * * *"}
    api = make_server(**every_second)
    make_server(share_store_with=api, **every_second)
    make_server(share_store_with=api, worker=True, **every_second)

    async def runs() -> list[dict[str, Any]] | None:
        found = await query_pg(
            api.settings,
            "SELECT args->>'timestamp' AS due, status::text AS state FROM procrastinate_jobs "
            "WHERE task_name = 'housekeeping' AND status = 'succeeded'",
        )
        return found if len(found) >= 4 else None

    done = await until(runs)
    assert len({run["due"] for run in done}) == len(done)


def test_serve_no_jobs_and_worker_need_postgresql(tmp_path) -> None:
    """With SQLite there is one process, which runs the jobs: both refuse, saying so."""
    sqlite = ServerProcess(tmp_path / "sqlite", {"VOXBOX_DATABASE_URL": None}, name="sqlite")
    for command in (["worker"], ["serve", "--no-jobs"]):
        r = sqlite.run_cli(*command)
        assert r.returncode == 2
        assert "needs PostgreSQL" in r.stderr
