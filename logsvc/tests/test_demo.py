"""What `make run`'s demo command sets up works as the README uses it: the littlelogs example's @belle exists
and can be followed, and the pixel line it prints is counted as a person's pageview, not a bot's."""

from __future__ import annotations

import io
import re
import shlex

from django.core.management import call_command
from django.test import Client

from analytics.models import BotHit, Hit
from logsvc.models import User
from social.tests.conftest import token_client


def demo() -> str:
    out = io.StringIO()
    call_command("demo", stdout=out)
    return out.getvalue()


def test_it_creates_belle_for_the_littlelogs_example(db):
    demo()
    demo()  # make run runs it at every start

    demo_user = User.objects.get(username="demo")
    belle = User.objects.get(username="belle")
    assert not belle.has_usable_password() and not belle.is_staff
    client = token_client(demo_user, app_name="My CLI")
    r = client.post("/api/1/logs/create/", {"content": "Shipped the #logsvc README, thanks @belle!"})
    assert r.status_code == 201
    assert r.json()["mentions"] == ["belle"]
    assert r.json()["user"]["avatar"] == "http://testserver/static/social/avatar.svg"
    assert '<a class="content-user" href="/belle">@belle</a>' in r.json()["content"]
    assert client.post("/api/1/users/belle/follow/").status_code == 201


def test_its_pixel_line_counts_a_person(db, settings):
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    [line] = [line for line in demo().splitlines() if "/count?" in line]
    args = shlex.split(line)
    user_agent = args[args.index("-A") + 1]
    url = args[-1].removeprefix("http://127.0.0.1:8000")

    r = Client(HTTP_HOST="127.0.0.1").get(url, HTTP_USER_AGENT=user_agent)

    assert r.status_code == 200
    assert Hit.objects.filter(path__path="/from-a-browser").count() == 1
    assert not BotHit.objects.exists()
    assert re.search(r"curl's own User-Agent the hit is stored as a bot's", demo())
