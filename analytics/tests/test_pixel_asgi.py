"""The pixel as the ASGI server serves it (analytics.pixel, logsvc.asgi): Django's answers, group commit, a failed
batch that fails only its own requests, a client that leaves before its commit, keep-alive.

The hot path's writes go through a connection of its own, so these tests commit (transaction=True) as
production does; the ones at the end run the real server, gunicorn with uvicorn workers, as `make run` does.
"""

from __future__ import annotations

import asyncio
import http.client
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import connection
from django.test import Client

from analytics import pixel as asgi_pixel
from analytics import sites
from analytics.models import BotHit, Hit, Site
from analytics.tests.conftest import database_url
from analytics.tests.test_ratelimit_processes import free_port, server_env
from conftest import run_coroutine
from logsvc import ratelimit
from logsvc.asgi import application, close_lookup_connections
from logsvc.models import RateLimitCounter

pytestmark = pytest.mark.django_db(transaction=True)

IP = "203.0.113.77"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _setup(settings):
    settings.ALLOWED_HOSTS = ["*"]
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "1000/60"}
    sites.forget_pixel_sites()
    yield
    asgi_pixel.hits_batcher.forget()  # its loop is gone with the test's asyncio.run
    close_lookup_connections()


@pytest.fixture
def site(alice) -> Site:
    return Site.objects.create(code="alice-blog", owner=alice, ignore_ips=["192.0.2.9"])


async def call(path: str, query: str = "", method: str = "GET", ip: str = IP, ua: str = UA, headers=()) -> tuple:
    """One request to the ASGI application, in this process: (status, headers, body)."""
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query.encode(),
        "headers": [(b"host", b"stats.example"), (b"user-agent", ua.encode()), *headers],
        "client": (ip, 40000),
        "server": ("127.0.0.1", 8000),
        "scheme": "http",
    }
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await application(scope, receive, send)
    start = sent[0]
    head = {name.decode().lower(): value.decode() for name, value in start["headers"]}
    return start["status"], head, b"".join(m.get("body", b"") for m in sent[1:])


def run(*calls):
    async def together():
        return await asyncio.gather(*calls)

    return run_coroutine(together())


def paths() -> list[str]:
    return sorted(Hit.objects.values_list("path__path", flat=True))


CASES = [
    ("/count/alice-blog", "p=/post/1&t=First&r=https://news.example.com/x&s=1920", {}),
    ("/count/alice-blog", "p=/post/1", {"HTTP_DNT": "1"}),
    ("/count/alice-blog", "p=/next", {"HTTP_SEC_PURPOSE": "prefetch"}),
    ("/count/alice-blog", "p=/x&b=7", {}),
    ("/count/alice-blog", "t=no-path", {}),
    ("/count/alice-blog", "p=/crawled", {"HTTP_USER_AGENT": "curl/8.5.0"}),
    ("/count/alice-blog", "p=/mine", {"REMOTE_ADDR": "192.0.2.9"}),
    ("/count/nobody", "p=/x", {}),
    ("/count", "p=/x", {}),
]


@pytest.mark.parametrize(("path", "query", "extra"), CASES)
def test_it_answers_as_the_django_view_does(site, path, query, extra):
    ua, ip = extra.get("HTTP_USER_AGENT", UA), extra.get("REMOTE_ADDR", IP)
    meta = {k: v for k, v in extra.items() if k not in ("HTTP_USER_AGENT", "REMOTE_ADDR")}
    django = Client().get(f"{path}?{query}", HTTP_HOST="stats.example", HTTP_USER_AGENT=ua, REMOTE_ADDR=ip, **meta)
    stored = (paths(), list(BotHit.objects.values_list("path", flat=True)))
    Hit.objects.all().delete()
    BotHit.objects.all().delete()
    headers = [(k[5:].replace("_", "-").lower().encode(), v.encode()) for k, v in meta.items()]
    status, head, body = run(call(path, query, ip=ip, ua=ua, headers=headers))[0]
    assert (status, body) == (django.status_code, django.content)
    assert head.get("x-goatcounter") == django.get("X-Goatcounter")
    assert set(head) - {"content-length"} == {name.lower() for name in django.headers} - {"content-length"}
    assert (paths(), list(BotHit.objects.values_list("path", flat=True))) == stored


def test_concurrent_hits_share_a_commit_and_each_is_answered_after_it(site):
    before = asgi_pixel.hits_batcher.batches
    answers = run(*(call("/count/alice-blog", f"p=/page/{n}", ua=f"{UA} n{n}") for n in range(30)))
    assert [status for status, _, _ in answers] == [200] * 30
    assert paths() == sorted(f"/page/{n}" for n in range(30))
    assert asgi_pixel.hits_batcher.batches - before < 30  # some commits carried several requests


def test_the_rate_limit_is_counted_in_the_batch(settings, site):
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "4/3600"}
    answers = run(*(call("/count/alice-blog", f"p=/n{n}") for n in range(6)))
    assert sorted(status for status, _, _ in answers) == [200, 200, 200, 200, 429, 429]
    assert sorted(head["x-rate-limit-remaining"] for _, head, _ in answers) == ["0", "0", "0", "1", "2", "3"]
    assert all("retry-after" in head for status, head, _ in answers if status == 429)
    assert len(paths()) == 4


def test_the_rate_limit_is_counted_in_redis_when_there_is_one(settings, site):
    settings.REDIS_URL = "redis://127.0.0.1:6379/10"
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "2/3600"}
    browser = f"{UA} {uuid.uuid4()}"  # a bucket of this run's own: Redis keeps counts between runs
    answers = run(*(call("/count/alice-blog", f"p=/r{n}", ua=browser) for n in range(4)))
    assert sorted(status for status, _, _ in answers) == [200, 200, 429, 429]
    assert len(paths()) == 2
    assert not RateLimitCounter.objects.exists()


def test_the_rate_limit_is_counted_in_the_batch_while_redis_does_not_answer(settings, site, caplog, monkeypatch):
    monkeypatch.setattr(ratelimit, "_redis_down_until", {})
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there: a Redis that went away
    settings.RATE_LIMITS = {**settings.RATE_LIMITS, "goatcounter-pixel": "2/3600"}
    answers = run(*(call("/count/alice-blog", f"p=/down{n}") for n in range(3)))
    assert sorted(status for status, _, _ in answers) == [200, 200, 429]
    assert len(paths()) == 2
    assert RateLimitCounter.objects.get().count == 3  # counted in PostgreSQL instead
    assert "rate limits are counted in PostgreSQL" in caplog.text


def test_a_failed_batch_fails_only_the_requests_whose_rows_were_in_it(site, alice):
    gone = Site.objects.create(code="gone-blog", owner=alice)
    run(call("/count/alice-blog", "p=/warm"), call("/count/gone-blog", "p=/warm"))  # both sites remembered
    Hit.objects.all().delete()
    with connection.cursor() as cursor:  # as another process would: this one still remembers the site
        cursor.execute("DELETE FROM analytics_visitorpath; DELETE FROM analytics_path WHERE site_id = %s", [gone.pk])
        cursor.execute("DELETE FROM analytics_site WHERE id = %s", [gone.pk])
    answers = run(
        *(call("/count/alice-blog", f"p=/kept/{n}", ua=f"{UA} {n}") for n in range(5)),
        call("/count/gone-blog", "p=/lost"),
    )
    assert [status for status, _, _ in answers] == [200] * 5 + [404]
    assert paths() == [f"/kept/{n}" for n in range(5)]


def test_a_remembered_path_of_a_site_deleted_elsewhere_fails_only_its_own_hit(site, alice):
    gone = Site.objects.create(code="gone-blog", owner=alice)
    for _ in range(2):  # the second batch reads both paths: remembered, and the next batch reads none
        run(call("/count/alice-blog", "p=/same"), call("/count/gone-blog", "p=/same"))
    assert sites.known_paths
    Hit.objects.all().delete()
    with connection.cursor() as cursor:  # as another process would: this one still remembers the site and path
        cursor.execute("DELETE FROM analytics_visitorpath; DELETE FROM analytics_path WHERE site_id = %s", [gone.pk])
        cursor.execute("DELETE FROM analytics_site WHERE id = %s", [gone.pk])
    answers = run(
        *(call("/count/alice-blog", "p=/same", ua=f"{UA} {n}") for n in range(3)), call("/count/gone-blog", "p=/same")
    )
    assert [status for status, _, _ in answers] == [200] * 3 + [404]
    assert paths() == ["/same"] * 3
    assert not sites.known_paths  # forgotten with the site: read again
    assert run(call("/count/alice-blog", "p=/same"))[0][0] == 200
    assert paths() == ["/same"] * 4


def test_a_batch_that_loses_its_connection_is_answered_503_and_the_next_one_reconnects(site):
    async def scenario():
        first = await call("/count/alice-blog", "p=/before")
        await asyncio.to_thread(terminate_group_commit_connections)
        lost = await asyncio.gather(*(call("/count/alice-blog", f"p=/lost/{n}", ua=f"{UA} {n}") for n in range(3)))
        after = await call("/count/alice-blog", "p=/after")
        return first, lost, after

    first, lost, after = run_coroutine(scenario())
    assert first[0] == 200 and after[0] == 200
    assert [status for status, _, _ in lost] == [503] * 3
    assert all(head["retry-after"] == "1" for _, head, _ in lost)
    assert paths() == ["/after", "/before"]  # nothing of the failed batch is stored


def terminate_group_commit_connections() -> None:
    with psycopg.connect(database_url(), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name = 'logsvc-groupcommit' AND datname = current_database()"
        )


# --- the real server --------------------------------------------------------------------------------------------


@pytest.fixture
def server(request, site) -> str:
    port = free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    env = server_env(ALLOWED_HOSTS="127.0.0.1,localhost", RATE_LIMIT_GOATCOUNTER_PIXEL="1000/60")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "logsvc.asgi",
            "--worker-class=uvicorn_worker.UvicornWorker",
            f"--bind=127.0.0.1:{port}",
            "--workers=1",
            "--no-control-socket",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )

    def stop() -> None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # its own session: the master and its workers, no more
            process.wait()
        log.seek(0)
        output = log.read().decode()
        log.close()
        assert "Traceback" not in output, output[-3000:]

    request.addfinalizer(stop)
    deadline = time.monotonic() + 60
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"the server did not start: {log.read().decode()[-2000:]}")
            time.sleep(0.1)
    return f"127.0.0.1:{port}"


def get(conn: http.client.HTTPConnection, query: str) -> http.client.HTTPResponse:
    conn.request("GET", f"/count/alice-blog?{query}", headers={"User-Agent": UA})
    response = conn.getresponse()
    response.read()
    return response


def test_a_browser_reuses_its_connection(server):
    conn = http.client.HTTPConnection(server, timeout=20)
    conn.connect()
    local = conn.sock.getsockname()
    answers = [get(conn, f"p=/kept-alive/{n}").status for n in range(3)]
    assert answers == [200, 200, 200]
    assert conn.sock is not None and conn.sock.getsockname() == local  # one TCP connection for the three
    conn.close()
    assert paths() == ["/kept-alive/0", "/kept-alive/1", "/kept-alive/2"]


def test_a_client_that_leaves_before_its_commit_costs_nobody_else_anything(server):
    warm = http.client.HTTPConnection(server, timeout=20)
    assert get(warm, "p=/warm").status == 200  # the site is remembered, the connection open
    host, port = server.split(":")
    with psycopg.connect(database_url()) as blocker:
        blocker.execute("LOCK TABLE analytics_hit IN EXCLUSIVE MODE")  # no batch can commit hits meanwhile
        leaving = socket.create_connection((host, int(port)))
        leaving.sendall(
            f"GET /count/alice-blog?p=/left HTTP/1.1\r\nHost: {server}\r\nUser-Agent: {UA}\r\n\r\n".encode()
        )
        answers: list[int] = []
        staying = threading.Thread(target=lambda: answers.append(get(warm, "p=/stayed").status))
        staying.start()
        time.sleep(0.5)
        leaving.close()  # gone before the commit that holds its hit
        time.sleep(0.2)
        blocker.commit()
    staying.join(timeout=20)
    assert answers == [200]
    assert get(warm, "p=/after").status == 200
    # The hit of the client that left was committed with its batch (its answer had nowhere to go): stored once.
    assert paths() == ["/after", "/left", "/stayed", "/warm"]
