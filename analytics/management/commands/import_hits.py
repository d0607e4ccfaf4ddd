"""Import hits into a site from GoatCounter's CSV export or a web server's log, as `goatcounter import` does."""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from analytics import importer
from analytics.models import Site


class Command(BaseCommand):
    help = (
        "Import hits from a GoatCounter CSV export (gzip'd or not) or a web server log; - reads standard input. "
        "Each line is stored once, however often the file is imported."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="The file to import, or - for standard input.")
        parser.add_argument("--site", required=True, help="The site's code.")
        parser.add_argument(
            "--format",
            default="csv",
            help=f"One of {', '.join(importer.FORMATS)} (a format string with GoatCounter's $names); default csv.",
        )
        parser.add_argument(
            "--datetime", default="", help="The time layout of $datetime in a log: format, Go's style or unix_sec."
        )
        parser.add_argument(
            "--exclude",
            action="append",
            dest="excludes",
            help="Leave out log lines that match: [!]field:text, field:glob:..., field:re:..., static, html or "
            "redirect; repeat for several. Default: static and redirect; --exclude '' leaves out nothing.",
        )
        parser.add_argument(
            "--follow", action="store_true", help="Then keep importing lines written to the log (Ctrl-C stops)."
        )
        parser.add_argument("--poll", type=float, default=0.5, help="Seconds between looks at a followed log.")
        parser.add_argument("--silent", action="store_true", help="No progress bar.")

    def handle(self, *args: Any, file: str, site: str, format: str, follow: bool, **options: Any) -> None:
        try:
            target = Site.objects.get(code=site)
        except Site.DoesNotExist:
            raise CommandError(f"No site {site!r}: create it first (manage.py createsite).") from None
        excludes = options["excludes"]
        try:
            job = importer.Importer(
                target, format, excludes=excludes, datetime_layout=options["datetime"], reader_process=not follow
            )
        except importer.ImportError_ as error:
            raise CommandError(str(error)) from None
        if follow and (file == "-" or format == "csv"):
            raise CommandError("--follow reads a server log from a file, not a CSV export or standard input")
        if follow and not os.access(file, os.R_OK):
            raise CommandError(f"Cannot read {file}: it is not there, or not readable")
        bar = tqdm(
            disable=options["silent"] or None,  # None: only on a terminal
            unit="B" if file != "-" and not follow else " lines",
            unit_scale=True,
            total=os.path.getsize(file) if file != "-" and not follow and os.path.exists(file) else None,
            file=sys.stderr,
        )
        try:
            if follow:
                stop: list[int] = []
                for number in (signal.SIGINT, signal.SIGTERM):  # stop between batches: the summary is then whole
                    signal.signal(number, lambda signum, frame: stop.append(signum))
                summary = importer.follow(
                    job, file, poll=options["poll"], keep_going=lambda: not stop, progress=lambda lines: _to(bar, lines)
                )
            else:
                try:
                    source = sys.stdin.buffer if file == "-" else open(file, "rb")  # noqa: SIM115
                except OSError as error:
                    raise CommandError(f"Cannot read {file}: {error.strerror}") from None
                with source:
                    summary = job.import_file(
                        source, progress=lambda done, lines: _to(bar, lines if file == "-" else done)
                    )
        except importer.ImportError_ as error:
            raise CommandError(f"{file}: {error}") from None
        finally:
            bar.close()
        for line in summary.errors:
            self.stderr.write(f"{file}: {line}")
        if summary.bad > len(summary.errors):
            self.stderr.write(f"{file}: ... and {summary.bad - len(summary.errors)} more bad lines")
        self.stdout.write(f"Imported into {target.code}: {summary.text()}.")


def _to(bar: tqdm, value: int) -> None:
    bar.update(value - bar.n)
