#!/usr/bin/env python
"""Issue 12's benchmark: what the IP's country (analytics.geoip) costs the pixel.

Not a test: it prints one table (also bench/out/geoip.txt) and exits 0. In this one process, on a database of
its own (geo_bench, dropped and made anew on the PostgreSQL at 127.0.0.1:5432, or DATABASE_URL's server):

- the lookup alone: analytics.geoip.locate over public addresses of many countries (and a private one), ns a call;
- the pixel under logsvc.asgi (the ASGI hot path, group commit and all), --concurrency requests at a time;
- the pixel as the Django view answers it (under sync gunicorn, and Django's test client), one at a time.

Each pixel row runs in rounds that alternate the lookup on and off (locate replaced by one that answers ""),
from the same addresses; it gives this process's CPU time per hit, and the wall time, as medians of the rounds,
and the ratio on/off of each round's pair (median). PostgreSQL's share is the same either way and is left out:
the lookup runs in the web process. Rate limits are off. About a minute with the defaults:

    nice -n 19 .venv/bin/python bench/geoip.py [--hits 3000] [--rounds 9] [--concurrency 32] [--city-sample]

With GEOIP_DATABASE set it measures that file; --city-sample makes one shaped like GeoLite2-City (mmdb-writer).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import OUT, log, recreate_database, table_lines

DB_NAME = "geo_bench"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0"


def public_ips(n: int) -> list[str]:
    """n random IPv4 addresses that the bundled data places, an eighth IPv6 (same seed every run)."""
    import iptocc

    rng = random.Random(12)
    ips: list[str] = []
    while len(ips) < n:
        if len(ips) % 8 == 7:
            ip = f"2a0{rng.randrange(10)}:{rng.randrange(1 << 16):x}:{rng.randrange(1 << 16):x}::{rng.randrange(9)}"
        else:
            ip = ".".join(str(rng.randrange(1, 224) if i == 0 else rng.randrange(256)) for i in range(4))
        if iptocc.country_code(ip):
            ips.append(ip)
    return ips


LANGUAGES = ["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"]


def city_sample(path: Path, networks: int) -> list[str]:
    """A MaxMind file shaped like GeoLite2-City (its records' fields, names in 8 languages) over random networks,
    for a MaxMind row without an account; returns one address in each network."""
    from mmdb_writer import MMDBWriter
    from netaddr import IPNetwork, IPSet

    def names(name: str) -> dict[str, str]:
        return {language: f"{name} ({language})" for language in LANGUAGES}

    country = {"geoname_id": 2750405, "iso_code": "NL", "names": names("Netherlands")}
    writer = MMDBWriter(ip_version=6, database_type="GeoLite2-City", ipv4_compatible=True)
    rng = random.Random(12)
    found: dict[str, None] = {}
    while len(found) < networks:
        found[str(IPNetwork(f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.0/22").cidr)] = None
    for n, network in enumerate(found):
        record = {
            "city": {"geoname_id": 1000 + n, "names": names(f"City {n}")},
            "continent": {"code": "EU", "geoname_id": 6255148, "names": names("Europe")},
            "country": country,
            "location": {"accuracy_radius": 20, "latitude": 52.37, "longitude": 4.89, "time_zone": "Europe/Amsterdam"},
            "postal": {"code": f"{1000 + n}"},
            "registered_country": country,
            "subdivisions": [{"geoname_id": 2749879, "iso_code": "NH", "names": names("North Holland")}],
        }
        writer.insert_network(IPSet([network]), record)
    writer.to_db_file(str(path))
    return [str(IPNetwork(network).ip + 5) for network in found]


def lookup_ns(ips: list[str], repeat: int) -> float:
    from analytics import geoip

    locate = geoip.locate
    locate(ips[0])  # opened at the first hit, as in a server
    start = time.perf_counter_ns()
    for _ in range(repeat):
        for ip in ips:
            locate(ip)
    return (time.perf_counter_ns() - start) / (repeat * len(ips))


async def asgi_pixel(ips: list[str], hits: int, concurrency: int) -> None:
    from logsvc.asgi import application

    async def one(n: int) -> None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": "/count/bench",
            "query_string": f"p=/p/{n % 200}&t=Page".encode(),
            "headers": [(b"host", b"127.0.0.1"), (b"user-agent", UA.encode())],
            "client": (ips[n % len(ips)], 40000),
            "server": ("127.0.0.1", 8000),
            "scheme": "http",
        }
        status: list[int] = []

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])

        await application(scope, receive, send)
        if status != [200]:
            raise SystemExit(f"the pixel answered {status}, not 200")

    async def worker(first: int) -> None:
        for n in range(first, hits, concurrency):
            await one(n)

    await asyncio.gather(*(worker(i) for i in range(concurrency)))


def django_pixel(ips: list[str], hits: int) -> None:
    from django.test import Client

    client = Client()
    for n in range(hits):
        r = client.get(f"/count/bench?p=/p/{n % 200}&t=Page", HTTP_USER_AGENT=UA, REMOTE_ADDR=ips[n % len(ips)])
        if r.status_code != 200:
            raise SystemExit(f"the pixel answered {r.status_code}, not 200")


def paired(run: Callable[[], None], hits: int, rounds: int) -> dict[str, list[float]]:
    """CPU and wall µs per hit of run(), the lookup on and off in alternate rounds (the first of each discarded)."""
    from analytics import geoip

    real = geoip.locate
    results: dict[str, list[float]] = {"on_cpu": [], "off_cpu": [], "on_wall": [], "off_wall": []}
    for round_no in range(rounds + 1):
        for side in ("on", "off") if round_no % 2 else ("off", "on"):
            geoip.locate = real if side == "on" else (lambda ip: "")
            cpu, wall = time.process_time(), time.perf_counter()
            run()
            cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
            if round_no:  # round 0 warms up: paths, connections, prepared statements
                results[f"{side}_cpu"].append(cpu / hits * 1e6)
                results[f"{side}_wall"].append(wall / hits * 1e6)
    geoip.locate = real
    return results


def ratio(results: dict[str, list[float]], key: str) -> float:
    return statistics.median(on / off for on, off in zip(results[f"on_{key}"], results[f"off_{key}"], strict=True))


def setup_django(server_url: str) -> None:
    os.environ["DATABASE_URL"] = recreate_database(server_url, DB_NAME)
    os.environ.setdefault("SECRET_KEY", "bench-only")
    os.environ["ALLOWED_HOSTS"] = "127.0.0.1,localhost,testserver"
    os.environ["RATE_LIMIT_GOATCOUNTER_PIXEL"] = ""
    os.environ["DEBUG"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "logsvc.settings")
    warnings.filterwarnings("ignore", "No directory at")  # WhiteNoise's, for staticfiles/ the pixel never serves
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from analytics.models import Site
    from logsvc.models import User

    owner = User.objects.create_user("bench")
    Site.objects.create(code="bench", owner=owner)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hits", type=int, default=3000, help="pixel hits per round and side (ASGI)")
    parser.add_argument("--django-hits", type=int, default=1000, help="pixel hits per round and side (Django view)")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--city-sample", action="store_true", help="look up in a made-up GeoLite2-City-shaped file (GEOIP_DATABASE)"
    )
    args = parser.parse_args()
    sample: list[str] = []
    if args.city_sample:
        OUT.mkdir(parents=True, exist_ok=True)
        sample = city_sample(OUT / "city-sample.mmdb", 1000)
        os.environ["GEOIP_DATABASE"] = str(OUT / "city-sample.mmdb")

    server = os.getenv("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    log(f"database {DB_NAME}: migrating")
    setup_django(server)
    from django.conf import settings

    from analytics import geoip

    source = "iptocc (bundled)"
    if settings.GEOIP_DATABASE:
        source = f"{'a made-up City-shaped' if sample else 'the MaxMind'} file {settings.GEOIP_DATABASE}"
    ips = sample or public_ips(1000)
    places = {geoip.locate(ip).partition("-")[0] for ip in ips}
    log(f"lookup: {source}; {len(ips)} addresses in {len(places)} countries")
    public_ns = lookup_ns(ips, 200)
    rows = [
        ("lookup, public address", f"{public_ns:,.0f} ns", "", "", "", ""),
        ("lookup, private address", f"{lookup_ns(['192.168.1.20'], 100_000):,.0f} ns", "", "", "", ""),
    ]

    from analytics.models import Hit

    log(f"ASGI pixel: {args.rounds} rounds of {args.hits} hits on and off, {args.concurrency} at a time")
    loop = asyncio.new_event_loop()  # one for every round, as a server's worker keeps its connections
    asgi = paired(lambda: loop.run_until_complete(asgi_pixel(ips, args.hits, args.concurrency)), args.hits, args.rounds)
    located = Hit.objects.exclude(location="").count() / Hit.objects.count()
    log(f"Django view pixel: {args.rounds} rounds of {args.django_hits} hits on and off")
    view = paired(lambda: django_pixel(ips, args.django_hits), args.django_hits, args.rounds)
    for name, results in (("pixel, ASGI hot path", asgi), ("pixel, Django view", view)):
        rows.append(
            (
                name,
                f"{statistics.median(results['on_cpu']):,.0f} µs",
                f"{statistics.median(results['off_cpu']):,.0f} µs",
                f"{ratio(results, 'cpu'):.3f}",
                f"{statistics.median(results['on_wall']):,.0f} µs",
                f"{ratio(results, 'wall'):.3f}",
            )
        )
    # The paired ratios carry the host's noise (a few %); the lookup's own share of a hit is the steadier figure.
    shares = ", ".join(
        f"{public_ns / 1000 / statistics.median(results['off_cpu']):.2%} of the {name}'s"
        for name, results in (("ASGI pixel", asgi), ("Django view", view))
    )
    header = ("per hit", "CPU, lookup on", "CPU, off", "CPU on/off", "wall, on", "wall on/off")
    title = (
        f"analytics.geoip: {source}; {len(places)} countries among the addresses; "
        f"{located:.0%} of the stored hits placed (the off rounds place none)"
    )
    lines = [title, *table_lines(header, rows), f"the lookup alone is {shares} CPU per hit"]
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "geoip.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
