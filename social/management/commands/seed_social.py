"""`manage.py seed_social`: a realistic littlelogs data set, loaded with COPY so a million logs take minutes.

Users with profiles, a skewed follow graph, logs in Markdown with #tags and @mentions (and their rendered HTML),
LogTag rows, mentions, comments, likes, the activity rows all of those cause, and the denormalised counters when
social.Counter exists. Rows are built in Python in chunks and sent with psycopg's COPY; secondary indexes are
dropped during the load and rebuilt after it, foreign-key triggers are skipped when the role may do so, sequences
are moved past the new ids, and the tables are analysed at the end.

    python manage.py seed_social --users 1000 --logs 1000000 --truncate
"""

from __future__ import annotations

import io
import random
import time
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape
from itertools import accumulate
from typing import Any, cast

from django.apps import apps
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, models, transaction
from django.utils import timezone
from PIL import Image, ImageDraw

from logsvc.images import reencode
from logsvc.models import User
from social.models import Activity, Comment, Follow, Like, Log, LogTag, Tag

# Seeded users are recognisable by their e-mail domain, so --truncate can remove them again.
SEED_EMAIL_DOMAIN = "seed.littlelogs.invalid"
CHUNK_LOGS = 20_000
SPAN = timedelta(days=365)  # logs are spread over the last year, ids in time order
# Follows dated inside the logged year: this many per log (the rest of the follow graph was in place before the
# year began). So the year's notifications have the same mix of types (follows, likes, comments, mentions) at
# any number of logs, and only their number grows with the logs; the graph itself does not depend on --logs.
FOLLOWS_PER_LOG = 0.04
LIKES_PER_LOG = 1.15  # on average; a log's expected likes are proportional to its author's popularity

COUNTER_KINDS = ("logs", "user_logs", "tag_logs", "tags", "activity")


# Half the seeded users have a picture: one of these, stored once and shared, so that every avatar link works.
AVATAR_COLOURS = ["#e4572e", "#17bebb", "#ffc914", "#2e282a", "#76b041", "#5e4ae3", "#f25f5c", "#247ba0"]


def seed_avatars() -> list[str]:
    """The stored names of the seed pictures, written (through default_storage) where missing."""
    names = []
    for n, colour in enumerate(AVATAR_COLOURS):
        image = Image.new("RGB", (96, 96), colour)
        ImageDraw.Draw(image).ellipse((24, 16, 72, 64), fill="#ffffff")
        ImageDraw.Draw(image).ellipse((12, 60, 84, 132), fill="#ffffff")
        raw = io.BytesIO()
        image.save(raw, "PNG")
        raw.name = f"seed-{n}.png"
        picture = reencode(raw)
        name = f"avatars/{picture.name}"  # the name holds the content's hash: same picture, same name
        names.append(name if default_storage.exists(name) else default_storage.save(name, picture))
    return names


def words(text: str) -> list[str]:
    return text.split()


# --- vocabulary -----------------------------------------------------------------------------------------

FIRST_NAMES = words(
    "Josh Belle Matt Dan Anna Ben Chloe David Emma Finn Grace Hugo Isla Jack Kate Liam Mia Noah Olivia Paul "
    "Quinn Ruby Sam Tara Umar Vera Will Xena Yusuf Zoe Aisha Bruno Carla Dmitri Elena Farah Gus Hana Ivan Jun "
    "Kofi Lena Marco Nina Omar Priya Rosa Sven Tomas Uma"
)
LAST_NAMES = words(
    "Sharp Cooper McKinnon Smith Nguyen Garcia Muller Rossi Tanaka Kowalski Silva Jensen Okafor Patel Dubois "
    "Novak Larsen Moreau Costa Ibrahim Kim Walsh Brennan Fischer Haddad Ortiz Young Hall Reid Baker"
)
BIOS = [
    "Making this thing right now.",
    "I'm a bit silly.",
    "Writer and coder of things.",
    "Game developer. My side project is a book about making games from scratch.",
    "Freelance designer, part-time baker.",
    "Building a tiny SaaS in public.",
    "iOS developer by day, musician by night.",
    "PhD student. Mostly reading papers and drinking coffee.",
    "Running a two-person studio.",
    "",
    "",
]
LOCATIONS = ["Melbourne, AU", "Hong Kong", "Berlin", "London", "San Francisco", "Lisbon", "Toronto", "Tokyo", ""]
TIMEZONES = ["Australia/Melbourne", "Asia/Hong_Kong", "Europe/Berlin", "Europe/London", "America/Los_Angeles",
             "Europe/Lisbon", "America/Toronto", "Asia/Tokyo", "UTC"]  # fmt: skip
SOURCES = ["", "", "", "", "", "littlelogs for iOS", "Hashtags", "logbot"]

BASE_TAGS = words(
    "admin writing design python django javascript react ios android swift rust golang marketing bookkeeping "
    "report theatre exist customerdevelopment HelloCode sideproject startup freelance email support bugfix "
    "refactor testing deploy devops docker postgres sql css html ux research reading book podcast video music "
    "art drawing photography fitness running cycling yoga meditation cooking travel family health sleep coffee "
    "meeting planning goals productivity focus learning course teaching mentoring hiring interview finance taxes "
    "invoicing sales launch release beta feedback analytics seo blog newsletter community opensource "
    "documentation api backend frontend mobile web server security performance database cloud aws linux mac "
    "hardware electronics gamedev unity pixelart NaNoWriMo weeknotes til littlelogs Hashtags Rascal editing "
    "outsourcing accounting legal contracts pricing onboarding branding logo illustration animation typography "
    "copywriting translation localization accessibility i18n kotlin elixir haskell clojure ruby rails php "
    "laravel vue svelte typescript node deno webpack graphql grpc kubernetes terraform ansible monitoring "
    "logging caching redis elasticsearch kafka ml ai datascience statistics math physics chemistry biology "
    "gardening woodworking knitting sewing pottery chess guitar piano singing dancing swimming climbing hiking"
)
TAG_SUFFIXES = ["Week", "Notes", "Ideas", "Log", "Club", "Lab"]


def tag_vocabulary(size: int = 300) -> list[str]:
    """size distinct tag names (case-insensitively), in the order of their popularity rank."""
    rng = random.Random(7)
    names, seen = [], set()
    for name in BASE_TAGS:
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    while len(names) < size:
        name = rng.choice(BASE_TAGS) + rng.choice(TAG_SUFFIXES)
        if name.lower() not in seen:
            seen.add(name.lower())
            names.append(name)
    # The plain words are the popular ones; the made-up compounds fill the long tail.
    base, compounds = names[: len(BASE_TAGS)], names[len(BASE_TAGS) : size]
    rng.shuffle(base)
    rng.shuffle(compounds)
    return [*base, *compounds][:size]


# Sentences of a log. {t} is a #tag, {u} an @mention; none starts with # (Markdown would make a heading),
# and none contains Markdown syntax or HTML special characters, so the HTML is the text plus the links.
TAG_SENTENCES = [
    "Catching up on some fiddly {t} stuff this morning.",
    "Spent a couple of hours on {t} today.",
    "Finally shipped the {t} changes I have been putting off.",
    "Read a long article about {t} over lunch.",
    "Made slow but steady progress on {t}.",
    "Wrote up our notes on {t} for the team.",
    "Booked some time tomorrow for {t}.",
    "Feeling good about where {t} is heading.",
    "Got stuck on a weird {t} problem for an hour, then found it was a typo.",
    "Updated and backed up our {t} docs.",
    "A quiet day, mostly {t}.",
    "Paired on {t} after standup.",
]
PLAIN_SENTENCES = [
    "Replied to a pile of support emails.",
    "Paid rent and updated the budget spreadsheet.",
    "113 lines edited this morning.",
    "Requested a refund for a bad app I bought recently.",
    "Took a long walk to clear my head.",
    "Tidied up the issue tracker and closed a dozen stale tickets.",
    "Not much done today, but that is fine.",
    "Answered questions about remote working.",
    "Drafted next week's plan.",
    "Cleaned up the home page copy.",
    "I didn't realise how big a project I was taking on when I started this.",
    "There's still quite a long way to go.",
    "Whatever happens, I'm going to open up some access in January.",
    "Grew the content on the site by one post a week.",
]
MENTION_SENTENCES = [
    "Paired with {u} on a tricky problem.",
    "Thanks to {u} for the feedback!",
    "Had a call with {u} about next steps.",
    "Reviewed a pull request from {u}.",
    "Caught up with {u} over coffee.",
]
COMMENT_TEXTS = [
    "Nice work!",
    "Thanks guys :)",
    "Good luck with the launch!",
    "How did you find it?",
    "I had the same problem last week.",
    "Looks great.",
    "That's a lot of progress for one day.",
    "I'll check out the book too!",
    "Same here, mornings are the best time for it.",
]


def tag_html(name: str) -> str:
    return f'<a class="tag" href="/tag/{name}"><span class="hash">#</span>{name}</a>'


def mention_html(username: str) -> str:
    return f'<a class="content-user" href="/{username}">@{username}</a>'


def render(paragraphs: Sequence[Sequence[tuple[str, str | None, str | None]]]) -> tuple[str, str]:
    """(markdown, html) of paragraphs of sentences (template, tag, username), as social.markdown renders them."""
    md_paragraphs, html_paragraphs = [], []
    for sentences in paragraphs:
        md, html = [], []
        for template, tag, user in sentences:
            md.append(template.format(t=f"#{tag}", u=f"@{user}"))
            html.append(escape(template, quote=False).format(t=tag_html(tag or ""), u=mention_html(user or "")))
        md_paragraphs.append(" ".join(md))
        html_paragraphs.append(f"<p>{' '.join(html)}</p>")
    return "\n\n".join(md_paragraphs), "\n".join(html_paragraphs)


# --- sampling -------------------------------------------------------------------------------------------


class Weighted:
    """Draws indexes 0..n-1 with the given weights (cumulative weights + bisect: O(log n) a draw)."""

    def __init__(self, weights: Sequence[float]) -> None:
        self.cum = list(accumulate(weights))
        self.total = self.cum[-1]
        self.n = len(self.cum)

    def draw(self, rng: random.Random) -> int:
        return min(bisect_right(self.cum, rng.random() * self.total), self.n - 1)

    def distinct(self, rng: random.Random, k: int, exclude: int = -1) -> list[int]:
        """k distinct draws, none equal to exclude (fewer when there aren't that many)."""
        k = min(k, self.n - (1 if 0 <= exclude < self.n else 0))
        chosen: dict[int, None] = {}
        attempts = 0
        while len(chosen) < k and attempts < 30 * k + 30:
            i = self.draw(rng)
            attempts += 1
            if i != exclude:
                chosen[i] = None
        if len(chosen) < k:  # a heavily skewed tail: top up uniformly
            rest = [i for i in range(self.n) if i != exclude and i not in chosen]
            chosen.update(dict.fromkeys(rng.sample(rest, k - len(chosen))))
        return list(chosen)


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, round(rng.gauss(lam, lam**0.5)))
    limit, k, p = pow(2.718281828459045, -lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


# --- tables ---------------------------------------------------------------------------------------------


@dataclass
class Table:
    """A model's table, written with COPY: the columns we fill, plus every other concrete column at its default
    (so a field someone adds later doesn't break the load)."""

    model: type[models.Model]
    columns: tuple[str, ...]
    extra_columns: tuple[str, ...] = ()
    extra_values: tuple[Any, ...] = ()
    rows: list[tuple[Any, ...]] = field(default_factory=list)
    written: int = 0

    @classmethod
    def of(cls, model: type[models.Model], *columns: str) -> Table:
        extras = [
            f
            for f in model._meta.concrete_fields
            if f.column not in columns and getattr(f, "db_default", models.NOT_PROVIDED) is models.NOT_PROVIDED
        ]
        # a concrete field has a column
        return cls(model, columns, tuple(cast(str, f.column) for f in extras), tuple(f.get_default() for f in extras))

    @property
    def name(self) -> str:
        return self.model._meta.db_table

    def flush(self, cursor: Any) -> None:
        if not self.rows:
            return
        columns = ", ".join(f'"{c}"' for c in (*self.columns, *self.extra_columns))
        extra = self.extra_values
        with cursor.copy(f'COPY "{self.name}" ({columns}) FROM STDIN') as copy:
            if extra:
                for row in self.rows:
                    copy.write_row(row + extra)
            else:
                for row in self.rows:
                    copy.write_row(row)
        self.written += len(self.rows)
        self.rows = []


def counter_model() -> type[models.Model] | None:
    try:
        return apps.get_model("social", "Counter")
    except LookupError:
        return None


def social_tables() -> list[str]:
    return [m._meta.db_table for m in apps.get_app_config("social").get_models(include_auto_created=True)]


# --- the seeder -----------------------------------------------------------------------------------------


class Seeder:
    def __init__(self, *, users: int, logs: int, seed: int, progress: bool = True, out: Any = None) -> None:
        self.n_users, self.n_logs = users, logs
        self.rng = random.Random(seed)
        self.progress = progress
        self.out = out
        self.now = timezone.now().replace(microsecond=0)
        self.start = self.now - SPAN
        self.timings: dict[str, float] = {}

    def say(self, message: str) -> None:
        if self.out is not None:
            self.out.write(message)

    def run(self, *, truncate: bool) -> dict[str, int]:
        started = time.monotonic()
        with transaction.atomic(), connection.cursor() as django_cursor:
            cursor = django_cursor.cursor  # psycopg's own cursor, for COPY
            if truncate:
                self.truncate(cursor)
            self.fast_load_settings(cursor)
            dropped = self.drop_secondary_indexes(cursor)
            self.load(cursor)
            t = time.monotonic()
            self.say(f"Rebuilding {len(dropped)} indexes")
            for definition in dropped:
                cursor.execute(definition)
            self.timings["indexes"] = time.monotonic() - t
            self.set_sequences(cursor)
            self.fill_counters(cursor)
            # Back to normal for whatever else runs in this transaction (a test's, say).
            cursor.execute("SET LOCAL session_replication_role = DEFAULT")
            cursor.execute("SET LOCAL maintenance_work_mem = DEFAULT")
        t = time.monotonic()
        self.analyze()
        self.timings["analyze"] = time.monotonic() - t
        self.timings["total"] = time.monotonic() - started
        return {table.name: table.written for table in self.tables.values()}

    # -- preparation

    def truncate(self, cursor: Any) -> None:
        tables = ", ".join(f'"{name}"' for name in social_tables())
        cursor.execute(f"TRUNCATE {tables} RESTART IDENTITY")
        deleted, _ = User.objects.filter(email__endswith=f"@{SEED_EMAIL_DOMAIN}").delete()
        self.say(f"Emptied the social tables; deleted {deleted} rows of earlier seeded users")

    def fast_load_settings(self, cursor: Any) -> None:
        import psycopg

        cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
        cursor.execute("SAVEPOINT seed_replica")
        try:  # skip the foreign-key triggers: the rows are consistent by construction (needs superuser)
            cursor.execute("SET LOCAL session_replication_role = replica")
            cursor.execute("RELEASE SAVEPOINT seed_replica")
            self.fk_checks = False
        except psycopg.Error:
            cursor.execute("ROLLBACK TO SAVEPOINT seed_replica")
            self.fk_checks = True

    def drop_secondary_indexes(self, cursor: Any) -> list[str]:
        """Drop the indexes that back no constraint on the big tables; returns their definitions to rebuild."""
        big = [m._meta.db_table for m in (Log, LogTag, Comment, Like, Activity, Follow)]
        big += [Log.mentions.through._meta.db_table, Comment.mentions.through._meta.db_table]
        cursor.execute(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
            WHERE i.indrelid = ANY(%s::regclass[]) AND NOT i.indisprimary AND NOT EXISTS (
                SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid AND c.conrelid = i.indrelid)
            """,
            [big],
        )
        found = cursor.fetchall()
        for name, _ in found:
            cursor.execute(f"DROP INDEX {name}")
        return [definition for _, definition in found]

    def next_id(self, cursor: Any, model: type[models.Model]) -> int:
        cursor.execute(f'SELECT COALESCE(MAX(id), 0) + 1 FROM "{model._meta.db_table}"')
        return cursor.fetchone()[0]

    # -- the load

    def load(self, cursor: Any) -> None:
        from tqdm import tqdm

        self.tables = {
            "user": Table.of(User, "id", "password", "last_login", "is_superuser", "username", "first_name",
                             "last_name", "email", "is_staff", "is_active", "date_joined", "bio", "url", "location",
                             "avatar", "timezone"),
            "tag": Table.of(Tag, "id", "name", "created"),
            "follow": Table.of(Follow, "id", "follower_id", "followee_id", "created"),
            "log": Table.of(Log, "id", "user_id", "markdown", "content", "source", "created"),
            "logtag": Table.of(LogTag, "id", "log_id", "tag_id", "user_id", "created"),
            "mention": Table.of(Log.mentions.through, "id", "log_id", "user_id"),
            "comment": Table.of(Comment, "id", "log_id", "user_id", "markdown", "content", "source", "created"),
            "comment_mention": Table.of(Comment.mentions.through, "id", "comment_id", "user_id"),
            "like": Table.of(Like, "id", "log_id", "user_id", "created"),
            "activity": Table.of(Activity, "id", "recipient_id", "type", "originator_id", "log_id", "comment_id",
                                 "created"),
        }  # fmt: skip
        self.ids = {key: self.next_id(cursor, table.model) for key, table in self.tables.items()}
        t = time.monotonic()
        self.make_users()
        self.make_tags(cursor)
        self.make_follows()
        for key in ("user", "tag", "follow", "activity"):
            self.tables[key].flush(cursor)
        self.timings["users+follows"] = time.monotonic() - t
        t = time.monotonic()
        bar = tqdm(total=self.n_logs, unit="logs", unit_scale=True, desc="seeding logs", disable=not self.progress)
        with bar:
            for first in range(0, self.n_logs, CHUNK_LOGS):
                count = min(CHUNK_LOGS, self.n_logs - first)
                self.make_logs(first, count)
                for table in self.tables.values():
                    table.flush(cursor)
                bar.update(count)
        self.timings["logs"] = time.monotonic() - t

    def take(self, key: str) -> int:
        value = self.ids[key]
        self.ids[key] = value + 1
        return value

    def make_users(self) -> None:
        rng, n = self.rng, self.n_users
        first_id = self.ids["user"]
        self.user_ids = list(range(first_id, first_id + n))
        self.ids["user"] = first_id + n
        self.usernames: list[str] = []
        self.joined: list[Any] = []
        table = self.tables["user"]
        avatars = seed_avatars()
        for uid in self.user_ids:
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            username = f"{first.lower()}{uid}"
            self.usernames.append(username)
            joined = self.start - timedelta(seconds=rng.uniform(0, 2 * 365 * 86_400))
            self.joined.append(joined)
            table.rows.append((
                uid, f"!{rng.getrandbits(128):032x}", None, False, username, first, last,
                f"{username}@{SEED_EMAIL_DOMAIN}", False, True, joined, rng.choice(BIOS),
                f"https://{username}.example.com/" if rng.random() < 0.4 else "", rng.choice(LOCATIONS),
                avatars[uid % len(avatars)] if rng.random() < 0.5 else "", rng.choice(TIMEZONES),
            ))  # fmt: skip
        # Popularity: a few users are followed, mentioned, liked and read by many (Zipf over a random order).
        ranks = list(range(n))
        rng.shuffle(ranks)
        self.popularity = [1 / (rank + 1) ** 0.9 for rank in ranks]
        mean = sum(self.popularity) / n
        # Popular users post more and get more likes and comments; a little noise keeps it from being exact.
        self.engagement = [min(8.0, max(0.3, (p / mean) ** 0.5)) for p in self.popularity]
        self.by_popularity = Weighted(self.popularity)
        posting = [e * rng.lognormvariate(0, 0.5) for e in self.engagement]
        self.by_posting = Weighted(posting)
        # Likes follow the author's popularity (the followed and mentioned get liked), scaled so that a log has
        # LIKES_PER_LOG likes on average over who posts how much.
        reach = [min(64.0, max(0.1, p / mean)) for p in self.popularity]
        scale = LIKES_PER_LOG * sum(posting) / sum(w * r for w, r in zip(posting, reach, strict=True))
        self.like_rate = [scale * r for r in reach]

    def make_tags(self, cursor: Any) -> None:
        rng = self.rng
        names = tag_vocabulary()
        cursor.execute(f'SELECT id, LOWER(name) FROM "{Tag._meta.db_table}"')
        existing = {name: tag_id for tag_id, name in cursor.fetchall()}
        self.tag_ids, self.tag_names = [], names
        table = self.tables["tag"]
        for name in names:
            tag_id = existing.get(name.lower())
            if tag_id is None:
                tag_id = self.take("tag")
                table.rows.append((tag_id, name, self.start - timedelta(days=rng.uniform(0, 365))))
            self.tag_ids.append(tag_id)
        self.by_tag_rank = Weighted([1 / (rank + 1) for rank in range(len(names))])  # Zipf, s = 1

    def make_follows(self) -> None:
        rng, n = self.rng, self.n_users
        follows, activity = self.tables["follow"], self.tables["activity"]
        span = SPAN.total_seconds()
        self.following: list[list[int]] = []
        for i in range(n):
            want = int(10 * 10 ** rng.random())  # 10-100, log-uniform: most follow a few dozen
            want = min(want, max(0, (n - 1) // 2) if n < 200 else n - 1)
            self.following.append(self.by_popularity.distinct(rng, want, exclude=i))
        # When: FOLLOWS_PER_LOG per log fall in the logged year, the others between the later of the two users'
        # joining and the start of that year. The same draws at any --logs, so the graph is the same too.
        total = sum(len(targets) for targets in self.following)
        in_year = min(1.0, FOLLOWS_PER_LOG * self.n_logs / total) if total else 0.0
        for i, targets in enumerate(self.following):
            uid = self.user_ids[i]
            for j in targets:
                which, at = rng.random(), rng.random()
                if which < in_year:
                    created = self.start + timedelta(seconds=at * span)
                else:
                    since = max(self.joined[i], self.joined[j])
                    created = since + (self.start - since) * at
                follows.rows.append((self.take("follow"), uid, self.user_ids[j], created))
                activity.rows.append((self.take("activity"), self.user_ids[j], "follow", uid, None, None, created))

    def make_logs(self, first: int, count: int) -> None:
        rng, t = self.rng, self.tables
        users, names, tag_ids = self.user_ids, self.usernames, self.tag_ids
        step = SPAN.total_seconds() / self.n_logs
        now = self.now
        for i in range(first, first + count):
            author = self.by_posting.draw(rng)
            uid = users[author]
            created = self.start + timedelta(seconds=step * (i + rng.random()))
            log_id = self.take("log")
            # tags: 0-4, Zipf over the vocabulary
            r = rng.random()
            n_tags = 0 if r < 0.25 else 1 if r < 0.6 else 2 if r < 0.85 else 3 if r < 0.95 else 4
            tags = self.by_tag_rank.distinct(rng, n_tags) if n_tags else []
            r = rng.random()
            n_mentions = 0 if r < 0.8 or self.n_users < 2 else 1 if r < 0.97 else 2
            mentioned = self.by_popularity.distinct(rng, n_mentions, exclude=author) if n_mentions else []
            sentences: list[tuple[str, str | None, str | None]] = [
                (rng.choice(TAG_SENTENCES), names_tag, None) for names_tag in (self.tag_names[k] for k in tags)
            ]
            sentences += [(rng.choice(MENTION_SENTENCES), None, names[j]) for j in mentioned]
            sentences += [(rng.choice(PLAIN_SENTENCES), None, None) for _ in range(rng.randint(1 if tags else 2, 4))]
            rng.shuffle(sentences)
            if len(sentences) > 3 and rng.random() < 0.3:
                cut = rng.randint(1, len(sentences) - 1)
                paragraphs = [sentences[:cut], sentences[cut:]]
            else:
                paragraphs = [sentences]
            markdown, html = render(paragraphs)
            t["log"].rows.append((log_id, uid, markdown, html, rng.choice(SOURCES), created))
            for k in tags:
                t["logtag"].rows.append((self.take("logtag"), log_id, tag_ids[k], uid, created))
            for j in mentioned:
                t["mention"].rows.append((self.take("mention"), log_id, users[j]))
                t["activity"].rows.append((self.take("activity"), users[j], "mention", uid, log_id, None, created))
            # likes: popular authors get more; each liker once, never the author
            engagement = self.engagement[author]
            n_likes = poisson(rng, self.like_rate[author])
            for j in self.by_posting.distinct(rng, n_likes, exclude=author) if n_likes else ():
                when = min(now, created + timedelta(seconds=rng.expovariate(1 / 10_800)))
                t["like"].rows.append((self.take("like"), log_id, users[j], when))
                t["activity"].rows.append((self.take("activity"), uid, "like", users[j], log_id, None, when))
            # comments: a conversation; the author sometimes answers; earlier commenters hear of later ones
            n_comments = poisson(rng, 0.35 * engagement)
            when = created
            commenters: list[int] = []
            for _ in range(n_comments):
                if commenters and rng.random() < 0.3:
                    who = author
                else:
                    who = self.by_posting.draw(rng)
                when = min(now, when + timedelta(seconds=rng.expovariate(1 / 7_200)))
                comment_id = self.take("comment")
                text = rng.choice(COMMENT_TEXTS)
                paragraph: list[tuple[str, str | None, str | None]]
                if who != author and rng.random() < 0.2:
                    paragraph = [("{u} " + text, None, names[author])]
                    t["comment_mention"].rows.append((self.take("comment_mention"), comment_id, uid))
                else:
                    paragraph = [(text, None, None)]
                c_markdown, c_html = render([paragraph])
                t["comment"].rows.append((comment_id, log_id, users[who], c_markdown, c_html, "", when))
                if who != author:
                    t["activity"].rows.append(
                        (self.take("activity"), uid, "comment", users[who], log_id, comment_id, when)
                    )
                for earlier in dict.fromkeys(commenters):
                    if earlier not in (who, author):
                        t["activity"].rows.append(
                            (self.take("activity"), users[earlier], "comment_after", users[who], log_id, comment_id,
                             when)
                        )  # fmt: skip
                commenters.append(who)

    # -- after the load

    def set_sequences(self, cursor: Any) -> None:
        for table in self.tables.values():
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
                f'FROM "{table.name}"',
                [f'"{table.name}"'],
            )

    def fill_counters(self, cursor: Any) -> None:
        """The denormalised counts, computed from the rows themselves (so they agree with them whatever was there)."""
        model = counter_model()
        if model is None:
            return
        t = time.monotonic()
        counter = Table.of(model, "kind", "key", "value")
        extra_cols = "".join(f', "{c}"' for c in counter.extra_columns if c != "id")
        extra_vals = [v for c, v in zip(counter.extra_columns, counter.extra_values, strict=True) if c != "id"]
        placeholders = "".join(", %s" for _ in extra_vals)
        name = counter.name
        cursor.execute(f'DELETE FROM "{name}" WHERE kind = ANY(%s)', [list(COUNTER_KINDS)])
        for kind, select in (
            ("logs", f'SELECT 0, COUNT(*) FROM "{Log._meta.db_table}"'),
            ("user_logs", f'SELECT user_id, COUNT(*) FROM "{Log._meta.db_table}" GROUP BY user_id'),
            ("tag_logs", f'SELECT tag_id, COUNT(*) FROM "{LogTag._meta.db_table}" GROUP BY tag_id'),
            ("tags", f'SELECT 0, COUNT(*) FROM "{Tag._meta.db_table}"'),
            ("activity", f'SELECT recipient_id, COUNT(*) FROM "{Activity._meta.db_table}" GROUP BY recipient_id'),
        ):
            cursor.execute(
                f'INSERT INTO "{name}" (kind, "key", "value"{extra_cols}) '
                f"SELECT %s, k, v{placeholders} FROM ({select}) AS counts (k, v)",
                [kind, *extra_vals],
            )
        self.timings["counters"] = time.monotonic() - t

    def analyze(self) -> None:
        names = [*social_tables(), User._meta.db_table]
        with connection.cursor() as cursor:
            for name in names:
                # VACUUM also sets the visibility map (index-only scans); it can't run inside a transaction.
                verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
                cursor.execute(f'{verb} "{name}"')


class Command(BaseCommand):
    help = "Fill the littlelogs tables with a realistic data set (users, follows, logs, tags, comments, likes, ...)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--users", type=int, default=1000, help="users to create (default 1000)")
        parser.add_argument("--logs", type=int, default=10_000, help="logs to create (default 10,000)")
        parser.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same data")
        parser.add_argument("--truncate", action="store_true", help="empty the social tables and seeded users first")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["users"] < 1 or options["logs"] < 0:
            raise CommandError("--users must be at least 1 and --logs at least 0")
        seeder = Seeder(
            users=options["users"],
            logs=options["logs"],
            seed=options["seed"],
            progress=not options["no_progress"] and options["verbosity"] > 0,
            out=self.stdout if options["verbosity"] > 0 else None,
        )
        written = seeder.run(truncate=options["truncate"])
        if options["verbosity"] > 0:
            rows = ", ".join(f"{name} {count:,}" for name, count in written.items())
            timings = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in seeder.timings.items())
            self.stdout.write(self.style.SUCCESS(f"Seeded: {rows}"))
            self.stdout.write(f"Time: {timings}; foreign-key checks {'on' if seeder.fk_checks else 'skipped'}")
