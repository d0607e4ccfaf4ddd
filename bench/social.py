#!/usr/bin/env python
"""littlelogs timeline paging benchmark over real HTTP: gunicorn + PostgreSQL + wrk on this machine.

Measures the time per request of the public, home, tag and activity timelines at page 1 and page 51
(offset=1000, limit=20) with 10,000 and with 1,000,000 logs, and the SQL queries a page runs at page sizes
20 and 100. Then, on the large data set only, the cost of one page (issue 17): app and database CPU per request
and the mean latency at one connection, beside /healthz's, for the home, public, tag, user and activity
timelines and the log detail at limit 20 and 100, first and deep pages, and for the Logster and Bytelog lists and
GoatCounter stats. Not a test: it prints two tables against the targets (bench/README.md, "bench/social.py").
Run it with `.venv/bin/python bench/social.py` (`--quick` for a smoke run, `--help` for every knob).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# `python bench/social.py` puts bench/ first on the path, not the project: the project's root goes there instead
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != ROOT / "bench"]
sys.path.insert(0, str(ROOT))

from bench.ingest import (  # after the path fix above
    EVENT_COLUMNS,
    LOCAL_PG,
    LOG_COLUMNS,
    OUT,
    REDIS,
    UNTHROTTLED,
    WRK,
    Bench,
    Database,
    EventFactory,
    Gunicorn,
    LogFactory,
    WrkResult,
    add_run_args,
    apply_quick,
    first_value,
    human,
    log,
    port_answers,
    recreate_database,
    run_bench,
    table_lines,
    with_database,
    write_lua,
)

DB_PREFIX = "logsvc_bench_social_"
PAGE = 20
# Queries are compared at the default and the largest page. (Not at a tiny one: Django skips a nested
# prefetch when the outer one found nothing, so 5 logs without comments run 2 queries fewer: fewer, not more.)
MAX_PAGE = 100
DEEP_PAGE = 51  # offset = (DEEP_PAGE - 1) * PAGE = 1000
TARGET_RATIO = 1.5
SEED = 1
SEED_EMAIL_DOMAIN = "seed.littlelogs.invalid"  # social/management/commands/seed_social.py
ENDPOINTS = ("public", "home", "tag", "activity")  # the 10k/1M ratios
QUERY_ENDPOINTS = (*ENDPOINTS, "user")  # query counts at limit 20 and 100
TITLES = {
    "public": "public timeline",
    "home": "home timeline (follows ~100)",
    "tag": "tag page (most used tag)",
    "activity": "activity timeline (most notified of logs)",
    "user": "user's logs (most prolific author)",
}
# The cost table (issue 17), on the large data set: every page at both limits, first and deep.
COST_TIMELINES = ("home", "public", "tag", "user", "activity")
COST_TITLES = {
    "home": "home timeline",
    "public": "public timeline",
    "tag": "tag page",
    "user": "user's logs",
    "activity": "activity timeline",
}
DEEP_OFFSET = 1000
TARGET_APP_MS = 5.0  # per 20-log page
TARGET_DB_MS = 3.0
TARGET_VS_HEALTHZ = 3.0
FAMILY_USER = "bench-social"  # owns the Logster messages, Bytelog events and GoatCounter site of the cost table
FAMILY_SITE = "bench-social"
FAMILY_DAYS = 90  # the hits' span (seed_analytics --days); messages and events span a week, as in bench/load.py
STATS_DAYS = 30
RATE_LIMIT_REDIS = "redis://127.0.0.1:6379/12"  # bench/ingest.py uses 14, bench/load.py 13


def endpoint_path(key: str, subjects: dict[str, Any]) -> str:
    return {
        "public": "/api/1/timelines/public/",
        "home": "/api/1/timelines/home/",
        "tag": f"/api/1/logs/tag/{urllib.parse.quote(subjects.get('tag', ''), safe='')}/",
        "activity": "/api/1/timelines/activity/",
        "user": f"/api/1/logs/user/{urllib.parse.quote(subjects.get('author', ''), safe='')}/",
    }[key]


def page_url(path: str, page: int, limit: int = PAGE) -> str:
    return f"{path}?limit={limit}" if page == 1 else f"{path}?limit={limit}&offset={(page - 1) * limit}"


# --- the in-process part: runs as a child with DATABASE_URL set to one size's database ------------------


def choose_subjects(cursor: Any) -> dict[str, Any]:
    """The users and tag the timelines are read for: the seeded user who follows 90-110 others and sees the most
    logs at home, the most used tag, and the user with the most notifications that carry a log (likes, comments,
    mentions: the items that embed a whole log, so the heavy ones; a follow's has "log": null). The seeder dates
    only a fixed share of follows per log inside the logged year, so that user's deep pages hold the same mix of
    items at every size (the report shows their bytes and how many items carry a log)."""
    cursor.execute(
        """
        WITH per_user AS (SELECT user_id, COUNT(*) AS n FROM social_log GROUP BY user_id),
             follows AS (SELECT follower_id, COUNT(*) AS n FROM social_follow GROUP BY follower_id)
        SELECT u.username, f.n, COALESCE(own.n, 0) + (
                 SELECT COALESCE(SUM(p.n), 0) FROM social_follow x JOIN per_user p ON p.user_id = x.followee_id
                 WHERE x.follower_id = f.follower_id) AS home
        FROM follows f JOIN logsvc_user u ON u.id = f.follower_id LEFT JOIN per_user own ON own.user_id = u.id
        ORDER BY abs(f.n - 100) > 10, home DESC LIMIT 1
        """
    )
    home_user, follows, home = cursor.fetchone()
    cursor.execute(
        "SELECT t.name, COUNT(*) FROM social_logtag lt JOIN social_tag t ON t.id = lt.tag_id "
        "GROUP BY t.name ORDER BY 2 DESC LIMIT 1"
    )
    tag, tag_logs = cursor.fetchone()
    cursor.execute(
        "SELECT u.username, COUNT(*) FILTER (WHERE a.log_id IS NOT NULL), COUNT(*) FROM social_activity a "
        "JOIN logsvc_user u ON u.id = a.recipient_id GROUP BY u.username ORDER BY 2 DESC, 3 DESC LIMIT 1"
    )
    activity_user, activity_logs, activity = cursor.fetchone()
    cursor.execute(
        "SELECT u.username, COUNT(*) FROM social_log l JOIN logsvc_user u ON u.id = l.user_id "
        "GROUP BY u.username ORDER BY 2 DESC, 1 LIMIT 1"
    )
    author, author_logs = cursor.fetchone()
    return {
        "author": author,
        "author_logs": author_logs,
        "home_user": home_user,
        "home_follows": follows,
        "home_logs": int(home),
        "tag": tag,
        "tag_logs": tag_logs,
        "activity_user": activity_user,
        "activity_rows": activity,
        "activity_with_log": activity_logs,
    }


def choose_detail_log(cursor: Any) -> dict[str, Any]:
    """The log with the most comments and likes: the heaviest log detail page."""
    cursor.execute(
        """
        WITH c AS (SELECT log_id, COUNT(*) AS n FROM social_comment GROUP BY log_id),
             l AS (SELECT log_id, COUNT(*) AS n FROM social_like GROUP BY log_id)
        SELECT log_id, COALESCE(c.n, 0), COALESCE(l.n, 0) FROM c FULL JOIN l USING (log_id)
        ORDER BY COALESCE(c.n, 0) + COALESCE(l.n, 0) DESC, log_id LIMIT 1
        """
    )
    log_id, comments, likes = cursor.fetchone()
    return {"id": log_id, "comments": comments, "likes": likes}


def seed_families(rows: int) -> dict[str, Any]:
    """The other families' hot lists need data too: `rows` Logster messages and Bytelog events over the last week
    (bench.ingest's factories, by COPY, as bench/load.py seeds them) and a GoatCounter site with `rows` hits over
    FAMILY_DAYS days, rolled up (manage.py seed_analytics), all owned by FAMILY_USER. Kept when already there (so
    --reuse skips it). Returns a new API key of that user with every scope, bound to the site."""
    import random
    from datetime import timedelta

    from django.core.management import call_command
    from django.db import connection

    from logsvc.models import SCOPES, ApiKey, User

    user, _ = User.objects.get_or_create(username=FAMILY_USER, defaults={"email": f"{FAMILY_USER}@example.org"})
    with connection.cursor() as cursor:
        counts = []
        for sql in (
            "SELECT COUNT(*) FROM events_logmessage WHERE owner_id = %s",
            "SELECT COUNT(*) FROM events_event WHERE owner_id = %s",
            (
                "SELECT COUNT(*) FROM analytics_hit h JOIN analytics_site s ON s.id = h.site_id "
                "WHERE s.owner_id = %s AND s.code = %s"
            ),
        ):
            cursor.execute(sql, [user.pk, FAMILY_SITE] if "analytics" in sql else [user.pk])
            counts.append(cursor.fetchone()[0])
    seeded = {"messages": counts[0], "events": counts[1], "hits": counts[2], "seconds": None}
    if counts != [rows, rows, rows]:
        from analytics.models import Site
        from events.models import Event, LogMessage

        started = time.monotonic()
        LogMessage.objects.filter(owner=user).delete()
        Event.objects.filter(owner=user).delete()
        Site.objects.filter(code=FAMILY_SITE).delete()
        now = datetime.now(UTC)
        rng = random.Random(3)
        moments = sorted(now - timedelta(seconds=rng.uniform(0, 7 * 86_400)) for _ in range(rows))
        db = Database(os.environ["DATABASE_URL"])
        db.copy(db.conn, "events_logmessage", LOG_COLUMNS, LogFactory(seed=4).rows(user.pk, moments))
        db.copy(db.conn, "events_event", EVENT_COLUMNS, EventFactory(seed=5).rows(user.pk, moments, now))
        db.vacuum_analyze("events_logmessage", "events_event")
        db.conn.close()
        call_command("seed_analytics", site=FAMILY_SITE, owner=FAMILY_USER, hits=rows, days=FAMILY_DAYS)
        seeded = {"messages": rows, "events": rows, "hits": rows, "seconds": time.monotonic() - started}
    ApiKey.objects.filter(user=user, name=FAMILY_USER).delete()
    key, raw = ApiKey.create(user=user, name=FAMILY_USER, scopes=[name for name, _ in SCOPES])
    from analytics.models import Site

    key.sites.set([Site.objects.get(code=FAMILY_SITE)])
    return {"key": raw, **seeded}


def logster_cursor(client: Any, key: str) -> str:
    """The cursor of the Logster page that starts DEEP_OFFSET messages in, by following Next as a client would."""
    url = f"/api/Log?limit={DEEP_OFFSET // 10}"
    for _ in range(10):
        body = client.get(url, headers={"ApiKey": key}).json()
        url = body["Next"]
        assert url, "fewer Logster messages than the deep page needs"
    return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)["cursor"][0]


def inprocess(size: int, subjects_json: str, token: str, family_rows: int) -> None:
    """Child mode: subjects (chosen here when none are given), bearer tokens, query counts per page size, the
    `next` chain to page 51 and EXPLAIN (ANALYZE, BUFFERS) of every page's SQL. With family_rows, also the cost
    table's own: the log detail's subject and the other families' data, key and deep Logster cursor. Prints one
    JSON line."""
    import django

    django.setup()
    from datetime import timedelta

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone
    from oauth2_provider.models import AccessToken, Application

    from logsvc.models import User

    subjects = json.loads(subjects_json)
    if not subjects:
        with connection.cursor() as cursor:
            subjects = choose_subjects(cursor)
    Application.objects.filter(name="bench-social").delete()
    tokens = {}
    for role in ("home_user", "activity_user"):
        user = User.objects.get(username=subjects[role])
        app = Application.objects.create(
            name="bench-social",
            user=user,
            client_type=Application.CLIENT_CONFIDENTIAL,
            authorization_grant_type=Application.GRANT_AUTHORIZATION_CODE,
            redirect_uris="https://example.org/callback",
        )
        raw = f"{token}-{role}"
        AccessToken.objects.create(
            user=user, application=app, token=raw, scope="read write", expires=timezone.now() + timedelta(days=365)
        )
        tokens[role] = raw
    auth = {key: tokens["activity_user" if key == "activity" else "home_user"] for key in QUERY_ENDPOINTS}
    client = Client()
    result: dict[str, Any] = {"subjects": subjects, "tokens": auth, "queries": {}, "counts": {}, "checks": []}
    lines = [f"EXPLAIN (ANALYZE, BUFFERS) at {human(size)} logs, the SQL each page really runs (in-process).\n"]
    for key in QUERY_ENDPOINTS:
        path = endpoint_path(key, subjects)
        headers = {"Authorization": f"Bearer {auth[key]}"}
        for limit in (PAGE, MAX_PAGE):
            with CaptureQueriesContext(connection) as captured:
                response = client.get(page_url(path, 1, limit), headers=headers)
            assert response.status_code == 200, (path, response.status_code, response.content[:300])
            result["queries"][f"{key}@{limit}"] = len(captured.captured_queries)
    for key in ENDPOINTS:
        path = endpoint_path(key, subjects)
        headers = {"Authorization": f"Bearer {auth[key]}"}
        # Follow `next` from page 1 to page 51, as a client would.
        url = page_url(path, 1)
        for _ in range(DEEP_PAGE - 1):
            body = client.get(url, headers=headers).json()
            url = body["next"]
            if not url:
                break
        deep = page_url(path, DEEP_PAGE)
        if not url or urllib.parse.urlsplit(url).query != urllib.parse.urlsplit(deep).query:
            result["checks"].append(f"{key}: following next 50 times gave {url!r}, not {deep}")
        for page in (1, DEEP_PAGE):
            executed: list[tuple[str, Any]] = []  # (SQL, parameters): a prepared query's logged SQL has only $1

            def record(execute, sql, params, many, context, executed=executed):
                executed.append((sql, params))
                return execute(sql, params, many, context)

            with CaptureQueriesContext(connection) as captured, connection.execute_wrapper(record):
                response = client.get(page_url(path, page), headers=headers)
            body = response.json()
            result["counts"][key] = body["count"]
            if len(body["results"]) != PAGE:
                result["checks"].append(f"{key} page {page}: {len(body['results'])} results, not {PAGE}")
            lines.append(f"=== GET {page_url(path, page)}: {len(captured.captured_queries)} queries")
            lines.extend(f"-- {q['time']} s: {q['sql'][:400]}" for q in captured.captured_queries)
            for sql, params in executed:
                if not sql.lstrip().upper().startswith("SELECT") or "social_" not in sql:
                    continue
                with connection.cursor() as cursor:
                    for _ in range(2):  # the second run is the warm one, as under wrk
                        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                        plan = [row[0] for row in cursor.fetchall()]
                    shown = connection.ops.last_executed_query(cursor.cursor, sql, params)
                lines.append(f"\n{shown}\n" + "\n".join(plan) + "\n")
    (OUT / f"explain-social-{human(size)}.txt").write_text("\n".join(lines) + "\n")
    if family_rows:
        with connection.cursor() as cursor:
            result["detail"] = choose_detail_log(cursor)
        with CaptureQueriesContext(connection) as captured:
            response = client.get(
                f"/api/1/logs/{result['detail']['id']}/", headers={"Authorization": f"Bearer {auth['home']}"}
            )
        assert response.status_code == 200, (response.status_code, response.content[:300])
        result["queries"]["detail"] = len(captured.captured_queries)
        result["families"] = seed_families(family_rows)
        result["families"]["logster_cursor"] = logster_cursor(client, result["families"]["key"])
    print("BENCH_SOCIAL " + json.dumps(result), flush=True)


# --- the benchmark --------------------------------------------------------------------------------------


@dataclass
class Size:
    logs: int
    db_url: str
    seed_seconds: float | None  # None: reused
    gunicorn: Gunicorn
    info: dict[str, Any]


@dataclass
class CostCase:
    """One row of the cost table: a page read at one connection on the large data set."""

    key: str
    title: str
    limit: str  # "20", "100", or "" where the page has no size
    page: str  # "first", "offset 1000", ...
    path: str
    script: Path
    targeted: bool  # checked against the targets (20-log pages and the log detail)


class SocialBench(Bench):
    """bench.ingest's Bench for its wrk runs and CPU accounting (measured_wrk, cpu_note, server_cpu)."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        self.sizes: list[Size] = []
        self.results: dict[tuple[str, int, int], list[tuple[WrkResult, dict[str, Any]]]] = {}
        self.subjects: dict[str, Any] = {}
        self.pages: dict[
            tuple[str, int, int] | tuple[str, str], dict[str, Any]
        ] = {}  # preflight: bytes per page, items with a log
        self.token = secrets.token_urlsafe(24)
        self.cost_cases: list[CostCase] = []
        self.cost_results: dict[str, list[tuple[WrkResult, dict[str, Any]]]] = {}  # path -> one run per round
        self.healthz_results: list[tuple[WrkResult, dict[str, Any]]] = []  # two per round: its start and its end

    def server_url(self) -> str:
        if os.getenv("DATABASE_URL"):
            return with_database(os.environ["DATABASE_URL"], "postgres")
        if port_answers(*LOCAL_PG):
            return f"postgres://{os.getenv('PGUSER', 'postgres')}@{LOCAL_PG[0]}:{LOCAL_PG[1]}/postgres"
        sys.exit(f"No DATABASE_URL and no PostgreSQL on {LOCAL_PG[0]}:{LOCAL_PG[1]}.")

    def env_for(self, db_url: str) -> dict[str, str]:
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "logsvc.settings",
            "DATABASE_URL": db_url,
            "DEBUG": "false",
            "SECRET_KEY": self.secret_key,
            "ALLOWED_HOSTS": "127.0.0.1,localhost,testserver",
            # The rate-limit counters of the Logster, Bytelog and GoatCounter reads go to Redis when it answers,
            # as in production, not into the PostgreSQL CPU the cost table measures.
            "REDIS_URL": self.redis_url,
            "LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            # One connection per worker for the whole run: at the default 600 s a backend would end mid-run and
            # take the CPU it spent in that run out of the count
            "CONN_MAX_AGE": "86400",
        }
        # Every rate limit the settings read from the environment, off.
        for name in set(re.findall(r"\"(RATE_LIMIT_[A-Z_]+)\"", (ROOT / "logsvc" / "settings.py").read_text())):
            env[name] = UNTHROTTLED
        return env

    def manage(self, env: dict[str, str], *command: str) -> None:
        subprocess.run([sys.executable, str(ROOT / "manage.py"), *command], env=env, check=True, cwd=ROOT)

    def seeded(self, db_url: str, logs: int) -> bool:
        """Whether db_url already holds this benchmark's data set (for --reuse)."""
        import psycopg

        try:
            with psycopg.connect(db_url, autocommit=True) as conn:
                have = first_value(conn.execute("SELECT COUNT(*) FROM social_log"))
                users = first_value(
                    conn.execute("SELECT COUNT(*) FROM logsvc_user WHERE email LIKE %s", [f"%@{SEED_EMAIL_DOMAIN}"])
                )
                counted = conn.execute("SELECT value FROM social_counter WHERE kind = 'logs' AND key = 0").fetchone()
        except psycopg.Error:
            return False
        return have == logs and users == self.args.users and counted is not None and counted[0] == logs

    def setup(self) -> None:
        args = self.args
        OUT.mkdir(parents=True, exist_ok=True)
        (OUT / "gunicorn.log").write_text("")
        if not WRK.exists():
            sys.exit("wrk is not installed at /usr/bin/wrk. Install it with: apt-get install wrk")
        self.secret_key = secrets.token_urlsafe(50)
        self.redis_url = RATE_LIMIT_REDIS if port_answers(*REDIS) else ""
        server = self.server_url()
        for logs in (args.small_logs, args.large_logs):
            name = f"{args.db_prefix}{human(logs).lower()}"
            db_url = with_database(server, name)
            seconds = None
            if args.reuse and self.seeded(db_url, logs):
                log(f"{name}: reusing its {human(logs)} logs (--reuse)")
                self.manage(self.env_for(db_url), "migrate", "--no-input", "-v0")
            else:
                db_url = recreate_database(server, name)
                env = self.env_for(db_url)
                log(f"{name}: recreated; migrating and seeding {human(logs)} logs for {args.users:,} users")
                self.manage(env, "migrate", "--no-input", "-v0")
                started = time.monotonic()
                self.manage(env, "seed_social", f"--users={args.users}", f"--logs={logs}", f"--seed={SEED}", "-v1")
                seconds = time.monotonic() - started
                log(f"  seed_social took {seconds:.1f} s")
            self.sizes.append(Size(logs, db_url, seconds, Gunicorn(args.workers, self.env_for(db_url)), {}))
        # DEBUG=false serves static files through the manifest (the default avatar URL needs it): collect them.
        self.manage(self.env_for(self.sizes[0].db_url), "collectstatic", "--no-input", "-v0")
        # Subjects are chosen on the small data set (so page 51 exists there) and read at both sizes.
        for size in self.sizes:
            size.info = self.run_inprocess(size, args.family_rows if size is self.sizes[-1] and self.cost else 0)
            if not self.subjects:
                self.subjects = size.info["subjects"]
            for problem in size.info["checks"]:
                log(f"  !! {human(size.logs)}: {problem}")
        import psycopg

        self.pg = psycopg.connect(server, autocommit=True)
        show = {k: first_value(self.pg.execute(f"SHOW {k}")) for k in ("server_version", "shared_buffers")}
        self.env_lines["PostgreSQL"] = f"{show['server_version']}, shared_buffers {show['shared_buffers']}"
        self.scripts = {
            role: write_lua(f"get_social_{role}", "GET", {"Authorization": f"Bearer {self.token}-{role}"})
            for role in ("home_user", "activity_user")
        }
        if self.cost:
            self.cost_cases = self.make_cost_cases(self.sizes[-1].info)

    @property
    def cost(self) -> bool:
        return not self.args.skip_cost

    def make_cost_cases(self, info: dict[str, Any]) -> list[CostCase]:
        """The cost table's pages: each timeline at limit 20 and 100, first page and DEEP_OFFSET in; the log
        detail; the Logster list (its deep page by cursor), the Bytelog list, GoatCounter stats."""
        cases = []
        for key in COST_TIMELINES:
            role = "activity_user" if key == "activity" else "home_user"
            for limit in (PAGE, MAX_PAGE):
                for offset in (0, DEEP_OFFSET):
                    path = (
                        endpoint_path(key, self.subjects) + f"?limit={limit}" + (f"&offset={offset}" if offset else "")
                    )
                    page = f"offset {offset}" if offset else "first"
                    cases.append(
                        CostCase(key, COST_TITLES[key], str(limit), page, path, self.scripts[role], limit == PAGE)
                    )
        detail = info["detail"]
        cases.append(
            CostCase("detail", f"log detail ({detail['comments']} comments, {detail['likes']} likes)", "", "",
                     f"/api/1/logs/{detail['id']}/", self.scripts["home_user"], True)
        )  # fmt: skip
        families = info["families"]
        api_key = write_lua("get_social_logster", "GET", {"ApiKey": families["key"]})
        bearer = write_lua("get_social_bearer", "GET", {"Authorization": f"Bearer {families['key']}"})
        cursor = urllib.parse.quote(families["logster_cursor"], safe="")
        today = datetime.now(UTC).date()
        days = f"start={(today - timedelta(days=STATS_DAYS - 1)).isoformat()}&end={today.isoformat()}"
        pages = [(limit, offset) for limit in (PAGE, MAX_PAGE) for offset in (0, DEEP_OFFSET)]
        for limit, offset in pages:
            logster = f"/api/Log?limit={limit}" + (f"&cursor={cursor}" if offset else "")
            page = f"{DEEP_OFFSET} in (cursor)" if offset else "first"
            cases.append(CostCase("logster", "Logster GET /api/Log", str(limit), page, logster, api_key, False))
        for limit, offset in pages:
            bytelog = f"/api/v1/events?limit={limit}" + (f"&offset={offset}" if offset else "")
            page = f"offset {offset}" if offset else "first"
            cases.append(CostCase("bytelog", "Bytelog GET /api/v1/events", str(limit), page, bytelog, bearer, False))
        for limit in (PAGE, MAX_PAGE):
            cases.append(CostCase("stats", f"GoatCounter GET /api/v0/stats/hits, {STATS_DAYS} days", str(limit), "first",
                                  f"/api/v0/stats/hits?{days}&limit={limit}", bearer, False))  # fmt: skip
        cases.append(CostCase("stats", f"GoatCounter GET /api/v0/stats/total, {STATS_DAYS} days", "", "",
                              f"/api/v0/stats/total?{days}", bearer, False))  # fmt: skip
        return cases

    def postgres_pids(self) -> list[int]:
        """Only the backends of this benchmark's databases (the gunicorn workers' persistent connections): other
        sessions on a shared server come and go, and a process gone between two readings counts negative."""
        names = [urllib.parse.urlsplit(s.db_url).path.lstrip("/") for s in self.sizes]
        rows = self.pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", [names]
        ).fetchall()
        return [pid for (pid,) in rows]

    def run_inprocess(self, size: Size, family_rows: int) -> dict[str, Any]:
        env = {**self.env_for(size.db_url), "DJANGO_SETTINGS_MODULE": "logsvc.settings"}
        command = [sys.executable, __file__, "--inprocess", str(size.logs), json.dumps(self.subjects), self.token,
                   str(family_rows)]  # fmt: skip
        proc = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
        match = re.search(r"^BENCH_SOCIAL (\{.*\})$", proc.stdout, re.MULTILINE)
        if proc.returncode != 0 or not match:
            raise RuntimeError(f"in-process checks at {human(size.logs)} failed:\n{proc.stdout}\n{proc.stderr}")
        info = json.loads(match.group(1))
        if "families" in info:
            families = info["families"]
            took = "kept" if families["seconds"] is None else f"seeded in {families['seconds']:.0f} s"
            log(f"{human(size.logs)}: other families {took}: {families['messages']:,} Logster messages, "
                f"{families['events']:,} Bytelog events, {families['hits']:,} hits; log detail {info['detail']}")  # fmt: skip
        log(
            f"{human(size.logs)}: subjects {info['subjects']}; counts {info['counts']}; queries {info['queries']}; "
            f"plans in {OUT / f'explain-social-{human(size.logs)}.txt'}"
        )
        return info

    def preflight_pages(self, size: Size) -> None:
        """Both pages of every endpoint answer 200 with a full page over HTTP, or the numbers mean nothing. Also
        notes each page's size in bytes (the body wrk fetches) and, for activity, how many items carry a log, so the
        report shows whether the two sizes serve comparable pages."""
        for key in ENDPOINTS:
            role = "activity_user" if key == "activity" else "home_user"
            for page in (1, DEEP_PAGE):
                url = size.gunicorn.base + page_url(endpoint_path(key, self.subjects), page)
                request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self.token}-{role}"})
                try:
                    with urllib.request.urlopen(request, timeout=60) as response:
                        raw = response.read()
                except urllib.error.HTTPError as exc:
                    raise RuntimeError(f"{url} answered {exc.code}: {exc.read()[:300]!r}") from exc
                body = json.loads(raw)
                self.pages[(key, page, size.logs)] = {
                    "bytes": len(raw),
                    "items": len(body["results"]),
                    "with_log": sum(1 for item in body["results"] if item.get("log")) if key == "activity" else None,
                    "types": dict(sorted(Counter(item.get("type") for item in body["results"]).items()))
                    if key == "activity"
                    else None,
                }
                if len(body["results"]) != PAGE:
                    log(f"  !! {url}: {len(body['results'])} results, not {PAGE}")

    def measure(self) -> None:
        args = self.args
        for size in self.sizes:
            size.gunicorn.start()
            self.preflight_pages(size)
        if self.cost:
            self.preflight_cost()
        if not args.skip_ratios:
            self.measure_ratios()
        if self.cost:
            self.measure_cost()

    def preflight_cost(self) -> None:
        """Every page of the cost table answers 200 (a timeline page holds `limit` logs) over HTTP."""
        base = self.sizes[-1].gunicorn.base
        for case in self.cost_cases:
            headers = {}
            for line in case.script.read_text().splitlines():
                if m := re.match(r'wrk\.headers\["(.+)"\] = "(.*)"', line):
                    headers[m.group(1)] = m.group(2)
            request = urllib.request.Request(base + case.path, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    raw = response.read()
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"{case.path} answered {exc.code}: {exc.read()[:300]!r}") from exc
            body = json.loads(raw)
            items = body.get("results", body.get("Messages", body.get("events", body.get("hits"))))
            self.pages[("cost", case.path)] = {
                "bytes": len(raw),
                "items": len(items) if isinstance(items, list) else None,
            }
            if case.key in COST_TIMELINES and len(items) != int(case.limit):
                log(f"  !! {case.path}: {len(items)} results, not {case.limit}")

    def measure_cost(self) -> None:
        """The cost table: each page at one connection (-t1 -c1) on the large data set, /healthz at the start and
        the end of every round; the cases in a rotated order, so none is always first after /healthz."""
        args = self.args
        size = self.sizes[-1]
        self.gunicorn = size.gunicorn
        healthz = write_lua("get_social_healthz", "GET", {})
        for round_no in range(1, args.rounds + 1):
            log(f"Cost round {round_no}/{args.rounds} at {human(size.logs)} logs, one connection")
            shift = (round_no - 1) * len(self.cost_cases) // args.rounds
            cases = self.cost_cases[shift:] + self.cost_cases[:shift]
            for case in [None, *cases, None]:
                path, script = ("/healthz", healthz) if case is None else (case.path, case.script)
                result, cpu = self.measured_wrk(size.gunicorn.base + path, script, args.cost_duration, 1)
                if case is None:
                    self.healthz_results.append((result, cpu))
                else:
                    self.cost_results.setdefault(case.path, []).append((result, cpu))
                log(f"  {path}: mean {result.mean_ms:.2f} ms, {result.rps:,.0f} req/s, {self.cpu_note(cpu)}")

    def measure_ratios(self) -> None:
        args = self.args
        cases = [(key, page) for key in ENDPOINTS for page in (1, DEEP_PAGE)]
        for round_no in range(1, args.rounds + 1):
            log(f"Round {round_no}/{args.rounds}")
            for key, page in cases:
                order = self.sizes if (round_no + len(key)) % 2 else list(reversed(self.sizes))
                for size in order:  # the two sizes side by side, alternating which goes first
                    self.gunicorn = size.gunicorn  # whose CPU measured_wrk counts
                    url = size.gunicorn.base + page_url(endpoint_path(key, self.subjects), page)
                    script = self.scripts["activity_user" if key == "activity" else "home_user"]
                    result, cpu = self.measured_wrk(url, script, args.query_duration, args.query_connections)
                    self.results.setdefault((key, page, size.logs), []).append((result, cpu))
                    log(
                        f"  {key} page {page} @ {human(size.logs)}: mean {result.mean_ms:.2f} ms, "
                        f"p99 {result.p99_ms:.1f} ms, {result.rps:,.0f} req/s, {self.cpu_note(cpu)}"
                    )

    def page_note(self, key: str, page: int, logs: int) -> str:
        seen = self.pages.get((key, page, logs))
        if not seen:
            return ""
        note = f"{seen['bytes'] / 1000:.1f} kB"
        if seen["with_log"] is not None:
            note += f", {seen['with_log']}/{seen['items']} with a log"
        return note

    def paired_ratio(self, key: str, page: int) -> float:
        small, large = (self.results[(key, page, s.logs)] for s in self.sizes)
        return statistics.median(b.mean_ms / a.mean_ms for (a, _), (b, _) in zip(small, large, strict=True))

    def cost_rows(self) -> list[tuple[str, ...]]:
        """The cost table's rows: /healthz first, then every case with its medians over rounds."""
        rounds = len(self.healthz_results) // 2
        healthz_round = [
            (self.healthz_results[2 * i][0].mean_ms + self.healthz_results[2 * i + 1][0].mean_ms) / 2
            for i in range(rounds)
        ]

        def medians(runs: list[tuple[WrkResult, dict[str, Any]]]) -> tuple[float, float, float]:
            return (
                statistics.median(c["gunicorn_ms_per_req"] for _, c in runs),
                statistics.median(c["postgres_ms_per_req"] for _, c in runs),
                statistics.median(r.mean_ms for r, _ in runs),
            )

        app, db, mean = medians(self.healthz_results)
        rows: list[tuple[str, ...]] = [("/healthz (same run, start and end of each round)", "", "", "", f"{app:.2f}", f"{db:.2f}",
                 f"{mean:.2f}", "1.00", "", "")]  # fmt: skip
        for case in self.cost_cases:
            runs = self.cost_results.get(case.path)
            if not runs:
                continue
            app, db, mean = medians(runs)
            ratio = statistics.median(r.mean_ms / h for (r, _), h in zip(runs, healthz_round, strict=False))
            seen = self.pages.get(("cost", case.path), {})
            kb = f"{seen['bytes'] / 1000:.1f}" if seen else ""
            target = verdict = ""
            if case.targeted:
                target = f"app<={TARGET_APP_MS:g} db<={TARGET_DB_MS:g} lat<={TARGET_VS_HEALTHZ:g}x"
                missed = [name for name, value, bound in (("app", app, TARGET_APP_MS), ("db", db, TARGET_DB_MS),
                                                         ("lat", ratio, TARGET_VS_HEALTHZ)) if value > bound]  # fmt: skip
                verdict = "MISS " + ",".join(missed) if missed else "PASS"
            rows.append((case.title, case.limit, case.page, kb, f"{app:.2f}", f"{db:.2f}", f"{mean:.2f}",
                         f"{ratio:.1f}", target, verdict))  # fmt: skip
        return rows

    def cost_lines(self) -> list[str]:
        args = self.args
        large = self.sizes[-1]
        header = ("page, one connection", "limit", "page", "kB", "app CPU ms", "DB CPU ms", "mean ms", "x healthz",
                  "target", "result")  # fmt: skip
        return [
            f"Cost per request at {human(large.logs)} logs, one connection (issue 17)",
            *table_lines(header, self.cost_rows()),
            "",
            (
                "app CPU ms: median over rounds of the gunicorn processes' CPU (/proc) per request; DB CPU ms: the same "
                "for the PostgreSQL backends of the bench databases; mean ms: wrk's mean latency at -t1 -c1"
            ),
            (
                f"x healthz: median over rounds of the page's mean latency over that round's /healthz mean latency "
                f"(/healthz measured at the start and the end of each round); {args.rounds} rounds of "
                f"{args.cost_duration} s runs after {args.warmup} s warm-up, cases in a rotated order"
            ),
            (
                f"targets (issue 17) for 20-log pages and the log detail: app CPU <= {TARGET_APP_MS:g} ms, DB CPU <= "
                f"{TARGET_DB_MS:g} ms, mean latency <= {TARGET_VS_HEALTHZ:g}x /healthz's; other rows for information"
            ),
            (
                f"other families: user {FAMILY_USER}, {self.families_note()}; stats for the last {STATS_DAYS} days; "
                f"Logster's deep page is the cursor {DEEP_OFFSET} messages in (it pages by cursor, not offset); "
                f"rate-limit counters in {'Redis ' + self.redis_url if self.redis_url else 'PostgreSQL (no Redis)'}"
            ),
        ]

    def families_note(self) -> str:
        families = self.sizes[-1].info.get("families", {})
        took = "kept (--reuse)" if families.get("seconds") is None else f"seeded in {families['seconds']:.0f} s"
        return (
            f"{families.get('messages', 0):,} Logster messages and {families.get('events', 0):,} Bytelog events over a "
            f"week, {families.get('hits', 0):,} hits over {FAMILY_DAYS} days rolled up (seed_analytics), {took}"
        )

    def report(self) -> str:
        args = self.args
        small, large = self.sizes
        rows: list[tuple[str, ...]] = []
        letter = iter("abcdefgh")
        for key in ENDPOINTS:
            for page in (1, DEEP_PAGE):
                if (key, page, large.logs) not in self.results:
                    continue
                tag = next(letter)
                title = f"({tag}) {TITLES[key]}, page {page}" + (f" (offset {(page - 1) * PAGE})" if page > 1 else "")
                runs = {s.logs: self.results[(key, page, s.logs)] for s in self.sizes}
                mean = {n: statistics.median(r.mean_ms for r, _ in runs[n]) for n in runs}
                rps = {n: statistics.median(r.rps for r, _ in runs[n]) for n in runs}
                cpu = {n: self.server_cpu(c for _, c in runs[n]) for n in runs}
                ratio = self.paired_ratio(key, page)
                cpu_ms = {n: statistics.median(c["gunicorn_ms_per_req"] + c["postgres_ms_per_req"] for _, c in runs[n])
                          for n in runs}  # fmt: skip
                cpu_ratio = cpu_ms[large.logs] / cpu_ms[small.logs] if cpu_ms[small.logs] > 0 else float("nan")
                rows.append(
                    (f"{title} @{human(small.logs)}", f"{mean[small.logs]:.2f} ms/req ({rps[small.logs]:,.0f} req/s)",
                     self.page_note(key, page, small.logs), cpu[small.logs], "", "", "", "", "")
                )  # fmt: skip
                rows.append(
                    (
                        f"{title} @{human(large.logs)}",
                        f"{mean[large.logs]:.2f} ms/req ({rps[large.logs]:,.0f} req/s)",
                        self.page_note(key, page, large.logs),
                        cpu[large.logs],
                        f"@{human(small.logs)} {mean[small.logs]:.2f} ms",
                        f"{ratio:.2f}",
                        f"<= {TARGET_RATIO}",
                        "PASS" if ratio <= TARGET_RATIO else "MISS",
                        f"{cpu_ratio:.2f}",
                    )
                )
        for key in QUERY_ENDPOINTS:
            for size in self.sizes:
                q20, q100 = (size.info["queries"][f"{key}@{n}"] for n in (PAGE, MAX_PAGE))
                rows.append(
                    (
                        f"(q) SQL queries per page, {TITLES[key]} @{human(size.logs)}",
                        f"{q100} at limit={MAX_PAGE}",
                        "",
                        "",
                        f"{q20} at limit={PAGE}",
                        "",
                        "equal",
                        "PASS" if q20 == q100 else "MISS",
                        "",
                    )
                )
        header = (
            "measurement",
            "value: median",
            "page",
            "srv CPU ms",
            "baseline",
            "ratio",
            "target",
            "result",
            "CPU ratio",
        )
        widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

        def fmt(r: tuple[str, ...]) -> str:
            return "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()

        import platform

        wrk_version = subprocess.run([str(WRK), "-v"], check=False, capture_output=True, text=True).stdout
        subjects = self.subjects

        def seeded(size: Size) -> str:
            took = "reused (--reuse)" if size.seed_seconds is None else f"seeded in {size.seed_seconds:.0f} s"
            counts = ", ".join(f"{k} {v:,}" for k, v in size.info["counts"].items())
            return f"{human(size.logs)} logs: {took}; counts {counts}"

        lines = [
            f"logsvc littlelogs timeline benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
            + (" (--quick: smoke run, not for decisions)" if args.quick else ""),
            fmt(header),
            fmt(tuple("-" * w for w in widths)),
            *(fmt(r) for r in rows),
            "",
            (
                f"ratio: median over {args.rounds} interleaved rounds of the per-round {human(large.logs)}/"
                f"{human(small.logs)} ratio of wrk's mean latency (the two sizes measured side by side)"
            ),
            (
                "page: the page's body over HTTP (what wrk fetches), in kB; for activity also how many of its items "
                'carry a whole log (a follow\'s has "log": null), so the two sizes can be seen to serve like pages'
            ),
            (
                "srv CPU ms: median CPU per request of gunicorn and of the PostgreSQL backends serving the bench "
                "databases, from /proc; CPU ratio: its 1M/10k ratio, steadier than latency on a busy host"
            ),
            (
                f"subjects: home={subjects['home_user']} (follows {subjects['home_follows']}), "
                f"tag=#{subjects['tag']}, activity={subjects['activity_user']}, user={subjects['author']}; pages of "
                f"{PAGE}, page {DEEP_PAGE} = offset {(DEEP_PAGE - 1) * PAGE}, reached by following next in-process"
            ),
            f"data: seed_social --users {args.users} --seed {SEED}; " + "; ".join(seeded(s) for s in self.sizes),
            (
                f"environment: {os.cpu_count()} CPUs, {platform.system()} {platform.release()}, Python "
                f"{platform.python_version()}; PostgreSQL {self.env_lines['PostgreSQL']}"
            ),
            (
                f"  server: gunicorn, {args.workers} sync workers per size, DEBUG=false, OAuth2 bearer tokens; "
                f"load: {wrk_version.split(' [')[0]}, -t{min(args.threads, args.query_connections)} "
                f"-c{args.query_connections} -d{args.query_duration}s after {args.warmup} s warm-up"
            ),
            f"  host: load average {' '.join(Path('/proc/loadavg').read_text().split()[:3])} at the end",
        ]
        if self.cost_results:
            lines += ["", *self.cost_lines()]
        return "\n".join(lines)

    def write_details(self) -> None:
        lines = ["Per-run details (mean/p50/p99 latency from wrk; CPU per request from /proc)"]
        for (key, page, logs), results in sorted(self.results.items()):
            for i, (r, cpu) in enumerate(results, 1):
                lines.append(
                    f"{key} page {page} @{human(logs)} round {i}: mean {r.mean_ms:.2f} ms, p50 {r.p50_ms:.2f} ms, "
                    f"p99 {r.p99_ms:.2f} ms, {r.rps:,.1f} req/s, errors {r.errors}; "
                    + ", ".join(f"{k}={v:.3g}" for k, v in cpu.items())
                )
        for path, results in [("/healthz", self.healthz_results), *self.cost_results.items()]:
            for i, (r, cpu) in enumerate(results, 1):
                lines.append(
                    f"cost {path} run {i}: mean {r.mean_ms:.2f} ms, p50 {r.p50_ms:.2f} ms, p99 {r.p99_ms:.2f} ms, "
                    f"{r.rps:,.1f} req/s, errors {r.errors}; " + ", ".join(f"{k}={v:.3g}" for k, v in cpu.items())
                )
        for page_key, seen in self.pages.items():
            lines.append(f"page {page_key} over HTTP: {json.dumps(seen)}")
        for size in self.sizes:
            lines.append(f"in-process @{human(size.logs)}: {json.dumps(size.info)}")
        (OUT / "social-details.txt").write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        super().close()
        if getattr(self, "pg", None) is not None:
            self.pg.close()
        for size in self.sizes:
            size.gunicorn.stop()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_args(p)
    p.add_argument("--quick", action="store_true", help="a short smoke run (100k logs, 1 round, 2 s runs)")
    p.add_argument("--query-duration", type=int, default=5, help="seconds per wrk run (default 5)")
    p.add_argument("--query-connections", type=int, default=4, help="wrk connections (default 4)")
    p.add_argument("--users", type=int, default=1000, help="seeded users, the same at both sizes (default 1000)")
    p.add_argument("--small-logs", type=int, default=10_000, help="logs of the baseline data set (default 10k)")
    p.add_argument("--large-logs", type=int, default=1_000_000, help="logs of the large data set (default 1M)")
    p.add_argument(
        "--reuse", action="store_true", help=f"keep a {DB_PREFIX}* database that already holds the same data set"
    )
    p.add_argument(
        "--db-prefix", default=DB_PREFIX, help=f"names of the two databases, before 10k/1m (default {DB_PREFIX})"
    )
    p.add_argument("--cost-duration", type=int, default=5, help="seconds per one-connection cost run (default 5)")
    p.add_argument(
        "--family-rows",
        type=int,
        default=100_000,
        help="Logster messages, Bytelog events and GoatCounter hits for the cost table (default 100k)",
    )
    p.add_argument("--skip-ratios", action="store_true", help="only the cost table (no 10k/1M wrk runs)")
    p.add_argument("--skip-cost", action="store_true", help="only the 10k/1M ratios and query counts")
    p.add_argument("--inprocess", nargs=4, metavar=("LOGS", "SUBJECTS", "TOKEN", "ROWS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    quick = {"rounds": 1, "query_duration": 2, "cost_duration": 2, "warmup": 1, "family_rows": 20_000}
    apply_quick(p, args, quick | {"large_logs": 100_000})
    if args.rounds < 1 or args.large_logs <= args.small_logs:
        p.error("need --rounds >= 1 and --large-logs > --small-logs")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.inprocess:
        logs, subjects, token, family_rows = args.inprocess
        inprocess(int(logs), subjects, token, int(family_rows))
        return 0
    bench = SocialBench(args)
    return run_bench(bench, bench.measure, "social")


if __name__ == "__main__":
    sys.exit(main())
