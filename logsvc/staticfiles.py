"""The static files storage: WhiteNoise's compressed, hashed names, from collectstatic's manifest."""

from __future__ import annotations

import logging

from django.contrib.staticfiles import finders
from django.core.files.storage import FileSystemStorage
from whitenoise.storage import CompressedManifestStaticFilesStorage

logger = logging.getLogger(__name__)


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    """A file collectstatic has not seen (it was not run, or not since the file was added) gets its plain
    /static/ URL and one warning in the log, instead of a 500 on every page or API answer that links it."""

    manifest_strict = False

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.uncollected: set[str] = set()  # warned about once, then linked by their plain names

    def url(self, name: str | None, force: bool = False) -> str:
        if name in self.uncollected:
            return FileSystemStorage.url(self, name)
        try:
            return super().url(name, force)
        except ValueError:
            if name is None or not finders.find(name):
                raise  # no such file at all: WhiteNoise asks for such names at start-up, and expects this
            logger.warning("%s is not in %s: run `manage.py collectstatic`", name, self.location)
            self.uncollected.add(name)
            return FileSystemStorage.url(self, name)
