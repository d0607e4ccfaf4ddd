"""Fill a site with realistic hits (for benchmarks and for trying the dashboard), then roll them up."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from analytics.models import ROLLUP_MODELS, Domain, Hit, Path, Site
from analytics.rollups import roll_up
from analytics.services import HIT_COLUMNS
from logsvc import partitions
from logsvc.models import User

CHUNK = 100_000
BROWSERS = {"Chrome 131": 40, "Safari 18": 18, "Chrome 130": 10, "Firefox 133": 8, "Edge 131": 7, "Samsung Internet 26": 4,
            "Safari 17": 4, "Firefox 132": 2, "Opera 115": 2, "": 5}  # fmt: skip
SYSTEMS = {"Windows 10": 30, "iOS 18.1": 18, "Android 14": 17, "macOS 10.15": 15, "Linux": 5, "iOS 17.6": 5,
           "Android 13": 5, "Chrome OS": 1, "": 4}  # fmt: skip
SIZES = {390: 18, 412: 12, 360: 8, 768: 5, 1280: 8, 1366: 10, 1440: 10, 1536: 7, 1920: 15, 2560: 5, None: 2}
LOCATIONS = {"US": 25, "US-CA": 8, "DE": 12, "GB": 9, "IN": 8, "FR": 6, "NL": 5, "BR": 5, "JP": 4, "CA": 4, "": 14}
LANGUAGES = {"en": 55, "de": 12, "fr": 6, "es": 8, "ja": 4, "nl": 4, "": 11}
REFERRERS = {("", ""): 45, ("Google", "g"): 25, ("Hacker News", "g"): 5, ("DuckDuckGo", "g"): 4, ("Bing", "g"): 3,
             ("news.ycombinator.com/item", "h"): 2, ("example.net/blog/links", "h"): 4, ("lobste.rs", "h"): 2,
             ("reddit.com/r/programming", "h"): 4, ("newsletter", "c"): 3, ("Email", "g"): 3}  # fmt: skip
CAMPAIGNS = {"": 94, "spring-sale": 3, "launch": 3}


def weighted(pool: dict, rng: random.Random, k: int) -> list:
    return rng.choices(list(pool), list(pool.values()), k=k)


class Command(BaseCommand):
    help = "Add N realistic hits to a site (created if missing) over the last D days, then roll them up."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--site", default="demo", help="Site code (created if missing).")
        parser.add_argument("--owner", default="demo", help="Owner of a new site (an existing username).")
        parser.add_argument("--hits", type=int, default=100_000)
        parser.add_argument("--days", type=int, default=365, help="Spread the hits over this many days to now.")
        parser.add_argument("--paths", type=int, default=400, help="Distinct pages (a few get most hits).")
        parser.add_argument("--seed", type=int, default=1)

    def handle(self, *args: Any, site: str, owner: str, hits: int, days: int, paths: int, seed: int, **kw) -> None:
        if hits < 1 or days < 1 or paths < 1:
            raise CommandError("--hits, --days and --paths must be at least 1.")
        target = Site.objects.filter(code=site).first()
        if target is None:
            user = User.objects.filter(username=owner).first()
            if user is None:
                raise CommandError(f"No site {site!r} and no user {owner!r} to own it: create one first.")
            target = Site.objects.create(code=site, owner=user)
            Domain.objects.get_or_create(domain=f"{site}.localhost", defaults={"site": target})
        rng = random.Random(seed)
        path_ids = self.make_paths(target, paths, rng)
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(path_ids))]  # Zipf: the front page, a few posts
        now = datetime.now(UTC)
        span = days * 86_400
        # The months of the hits get their partitions first, as an import's do (logsvc.partitions).
        month, last = partitions.month_of(now - timedelta(seconds=span + 1)), partitions.month_of(now)
        months = [month]
        while months[-1] < last:
            months.append(partitions.add_months(months[-1], 1))
        partitions.ensure(Hit._meta.db_table, months)
        sql = f"COPY analytics_hit ({', '.join(HIT_COLUMNS)}) FROM STDIN"
        with tqdm(total=hits, unit="hits", unit_scale=True, desc="hits") as bar:
            for start in range(0, hits, CHUNK):
                k = min(CHUNK, hits - start)
                moments = sorted(rng.random() for _ in range(k))  # in time order, as they would arrive
                refs = weighted(REFERRERS, rng, k)
                columns = zip(
                    rng.choices(path_ids, weights, k=k),
                    moments,
                    refs,
                    weighted(CAMPAIGNS, rng, k),
                    weighted(BROWSERS, rng, k),
                    weighted(SYSTEMS, rng, k),
                    weighted(SIZES, rng, k),
                    weighted(LOCATIONS, rng, k),
                    weighted(LANGUAGES, rng, k),
                    strict=True,
                )
                with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
                    for path_id, moment, (ref, scheme), campaign, browser, system, size, location, lang in columns:
                        copy.write_row(
                            (target.pk, path_id, uuid.UUID(int=rng.getrandbits(128)), rng.random() < 0.65, ref,
                             scheme, campaign, browser, system, size, location, lang,
                             now - timedelta(seconds=span * (1 - moment) + 1))
                        )  # fmt: skip
                bar.update(k)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE analytics_hit")
        with tqdm(total=hits, unit="hits", unit_scale=True, desc="rollups") as bar:
            roll_up(progress=bar.update)
        with connection.cursor() as cursor:  # fresh planner statistics, as autovacuum would give them in a while
            for model in ROLLUP_MODELS:
                cursor.execute(f"VACUUM ANALYZE {model._meta.db_table}")
        self.stdout.write(f"Added {hits:,} hits to site {target.code} (id {target.pk}) over {days} days.")

    def make_paths(self, site: Site, n: int, rng: random.Random) -> list[int]:
        words = ["release", "notes", "howto", "intro", "postgres", "django", "python", "deploy", "privacy", "stats"]
        wanted = ["/", "/about", "/blog"] + [
            f"/blog/{i}-{rng.choice(words)}-{rng.choice(words)}" for i in range(max(0, n - 3))
        ]
        Path.objects.bulk_create(
            [
                Path(site=site, path=path, title=path.strip("/").replace("-", " ").title() or "Home")
                for path in wanted[:n]
            ],
            ignore_conflicts=True,
        )
        ids = dict(Path.objects.filter(site=site, path__in=wanted[:n], event=False).values_list("path", "id"))
        return [ids[path] for path in wanted[:n]]
