"""A checkout served without collectstatic still answers: a static file missing from the manifest (the
littlelogs default avatar, the admin's CSS) gets its plain URL, not a 500 on every page that links it."""

from __future__ import annotations

import logging

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from social import services

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "logsvc.staticfiles.StaticFilesStorage"},
}


@pytest.fixture
def production_static(settings, tmp_path):
    """The production storage (hashed names from collectstatic's manifest), over an empty STATIC_ROOT."""
    settings.DEBUG = False
    settings.STATIC_ROOT = tmp_path / "static"
    settings.STORAGES = STORAGES
    return settings.STATIC_ROOT


def avatar_of_first_log(client: APIClient) -> str:
    r = client.get("/api/1/timelines/public/")
    assert r.status_code == 200, r.content[:300]
    return r.json()["results"][0]["user"]["avatar"]


def test_without_collectstatic_the_api_answers_with_the_plain_url(production_static, alice, caplog):
    services.create_log(user=alice, markdown="shipped it")
    with caplog.at_level(logging.WARNING, logger="logsvc.staticfiles"):
        for _ in range(3):
            assert avatar_of_first_log(APIClient()) == "http://testserver/static/social/avatar.svg"
    assert [r.getMessage() for r in caplog.records if r.name == "logsvc.staticfiles"] == [
        f"social/avatar.svg is not in {production_static}: run `manage.py collectstatic`"
    ]  # once, not once an avatar
    admin = APIClient()
    admin.force_login(type(alice).objects.create_superuser("root", "root@example.org", "pw"))
    assert admin.get("/admin/").status_code == 200


def test_after_collectstatic_the_api_links_the_hashed_file(production_static, alice):
    call_command("collectstatic", "--no-input", verbosity=0)
    services.create_log(user=alice, markdown="shipped it")
    avatar = avatar_of_first_log(APIClient())
    assert avatar.startswith("http://testserver/static/social/avatar.") and avatar != (
        "http://testserver/static/social/avatar.svg"
    )
    assert (production_static / avatar.removeprefix("http://testserver/static/")).exists()


def test_a_file_that_exists_nowhere_is_still_an_error_and_not_logged(production_static, caplog):
    """WhiteNoise asks for names without their hash (bootstrap.min.css -> bootstrap.css) at start-up and takes
    a ValueError as "no such file": those are not warned about, once per worker, as missing from the manifest."""
    from django.contrib.staticfiles.storage import staticfiles_storage

    call_command("collectstatic", "--no-input", verbosity=0)
    with caplog.at_level(logging.WARNING, logger="logsvc.staticfiles"), pytest.raises(ValueError):
        staticfiles_storage.url("rest_framework/css/bootstrap.css")
    assert not [r for r in caplog.records if r.name == "logsvc.staticfiles"]
