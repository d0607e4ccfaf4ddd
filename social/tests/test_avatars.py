"""Avatars: whatever is uploaded, what is stored and served is a clean picture; old files go; every link works.

Through the API (PATCH /api/1/users/$self/), the admin's form and code, for every format taken, with metadata
and trailing bytes; then served at /media/ (DEBUG off, as in production) with a fixed type and nosniff.
"""

from __future__ import annotations

import io
from urllib.parse import urlsplit

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.forms import modelform_factory
from django.test import Client
from PIL import Image

from logsvc.models import User

SELF = "/api/1/users/$self/"
SECRET = "SpyCam-4711 at 52.5200N 13.4050E"
JUNK = b"<html><script>alert(document.domain)</script></html>PK\x03\x04 appended"

# format sent -> (content type served, extension stored)
FORMATS = {
    "PNG": ("image/png", ".png"),
    "JPEG": ("image/jpeg", ".jpg"),
    "WEBP": ("image/webp", ".webp"),
    "GIF": ("image/png", ".png"),  # its first frame
}


def picture(fmt: str, size: tuple[int, int] = (1200, 800), orientation: int | None = None) -> bytes:
    """An image as a phone or an attacker sends it: metadata with a secret, then bytes after the image."""
    image = Image.new("RGB", size, "#3366cc")
    image.paste((255, 255, 0), (0, 0, size[0] // 2, size[1] // 2))  # the top-left quarter is yellow
    exif = Image.Exif()
    exif[0x010F] = SECRET  # Make
    if orientation:
        exif[0x0112] = orientation
    out = io.BytesIO()
    if fmt == "GIF":
        second = Image.new("RGB", size, "black")
        image.save(out, "GIF", save_all=True, append_images=[second], comment=SECRET.encode(), loop=0)
    elif fmt == "PNG":
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("Comment", SECRET)
        image.save(out, "PNG", pnginfo=info, exif=exif, icc_profile=SECRET.encode())
    else:
        image.save(out, fmt, exif=exif, icc_profile=SECRET.encode())
    return out.getvalue() + JUNK


def upload(client, data: bytes, name: str = "me.png"):
    file = io.BytesIO(data)
    file.name = name
    return client.patch(SELF, {"avatar": file}, format="multipart")


def served(url: str):
    return Client().get(urlsplit(url).path)


def stored(user: User) -> bytes:
    user.refresh_from_db()
    assert user.avatar.name is not None
    with default_storage.open(user.avatar.name) as file:
        return file.read()


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_upload_is_stored_and_served_clean(alice_session, alice, fmt):
    content_type, extension = FORMATS[fmt]
    r = upload(alice_session, picture(fmt), name=f"holiday.{fmt.lower()}")
    assert r.status_code == 200
    data = stored(alice)
    assert alice.avatar.name.startswith("avatars/holiday-") and alice.avatar.name.endswith(extension)
    assert SECRET.encode() not in data and b"<script>" not in data and b"PK\x03\x04" not in data
    with Image.open(io.BytesIO(data)) as image:
        assert image.size == (512, 341)  # at most 512 a side, proportions kept
        assert not image.getexif() and not {"comment", "Comment", "icc_profile", "exif"} & set(image.info)
        assert getattr(image, "n_frames", 1) == 1
        image.load()
        assert image.convert("RGB").getpixel((10, 10))[:2] == pytest.approx((255, 255), abs=8)  # still the picture
    # The link the API gives works, with and without DEBUG, as what it is and nothing else.
    response = served(r.json()["avatar"])
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "sandbox" in response["Content-Security-Policy"]
    assert b"".join(response.streaming_content) == data


@pytest.mark.parametrize("name", ["...png", "<script>.png", "../../../etc/passwd.png", "x" * 300 + ".png", "ü.png"])
def test_any_file_name_gives_a_safe_stored_name(alice_session, alice, name):
    assert upload(alice_session, picture("PNG", size=(20, 20)), name=name).status_code == 200
    alice.refresh_from_db()
    folder, _, file = alice.avatar.name.partition("/")
    assert folder == "avatars" and "/" not in file and file.endswith(".png") and len(file) <= 60
    assert set(file) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")
    assert served(f"/media/{alice.avatar.name}").status_code == 200


def test_a_large_photo_is_taken(alice_session, alice):
    assert upload(alice_session, picture("JPEG", size=(8000, 6000)), "big.jpg").status_code == 200  # 48 MP
    with Image.open(io.BytesIO(stored(alice))) as image:
        assert image.size == (512, 384)


def test_a_photo_is_turned_upright_before_its_exif_goes(alice_session, alice):
    assert upload(alice_session, picture("JPEG", size=(400, 200), orientation=6), "p.jpg").status_code == 200
    with Image.open(io.BytesIO(stored(alice))) as image:
        assert image.size == (200, 400) and not image.getexif()


def big_bitmap() -> bytes:
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(out, "PNG")  # 100 MP in 12 kB: a decompression bomb
    return out.getvalue()


def truncated_png() -> bytes:
    return picture("PNG")[:300]


NOT_IMAGES = {
    "text": lambda: b"not an image",
    "html": lambda: b"<!DOCTYPE html><html><script>alert(1)</script></html>",
    "svg": lambda: b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "pdf": lambda: b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
    "truncated": truncated_png,
    "bomb": big_bitmap,
    "tiff": lambda: _tiff(),
}


def _tiff() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(out, "TIFF")  # an image, but not one we serve to browsers
    return out.getvalue()


@pytest.mark.parametrize("kind", NOT_IMAGES)
def test_what_is_not_a_picture_we_take_is_refused(alice_session, alice, kind, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert upload(alice_session, picture("PNG")).status_code == 200
    before = stored(alice)
    r = upload(alice_session, NOT_IMAGES[kind](), name="me.png")
    assert r.status_code == 400
    assert ("too large" if kind == "bomb" else "Upload a PNG, JPEG, WebP or GIF image.") in r.json()["avatar"][0]
    assert stored(alice) == before  # the picture she had is still hers
    assert default_storage.listdir("avatars")[1] == [alice.avatar.name.split("/")[1]]  # and nothing else stored


def test_a_replaced_avatar_is_deleted_once_committed(alice_session, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        first = upload(alice_session, picture("PNG")).json()["avatar"]
    alice.refresh_from_db()
    old = alice.avatar.name
    with django_capture_on_commit_callbacks(execute=False) as pending:
        second = upload(alice_session, picture("JPEG", size=(300, 300)), "new.jpg").json()["avatar"]
    assert default_storage.exists(old)  # not before the new one is committed
    for callback in pending:
        callback()
    assert not default_storage.exists(old)
    assert served(first).status_code == 404
    assert served(second).status_code == 200
    assert default_storage.listdir("avatars")[1] == [User.objects.get(pk=alice.pk).avatar.name.split("/")[1]]


def test_a_cleared_avatar_is_deleted(alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        alice.avatar.save("me.png", ContentFile(picture("PNG")))
    url = f"/media/{alice.avatar.name}"
    assert served(url).status_code == 200
    form = modelform_factory(User, fields=["avatar"])({"avatar-clear": "on"}, {}, instance=alice)  # the admin's box
    assert form.is_valid(), form.errors
    with django_capture_on_commit_callbacks(execute=True):
        form.save()
    assert User.objects.get(pk=alice.pk).avatar.name == ""
    assert default_storage.listdir("avatars")[1] == []
    assert served(url).status_code == 404


def test_a_picture_another_user_still_has_is_kept(alice, charlie, django_capture_on_commit_callbacks):
    # seed_social's users share a few pictures: one user changing theirs leaves the others' alone.
    with django_capture_on_commit_callbacks(execute=True):
        alice.avatar.save("shared.png", ContentFile(picture("PNG")))
        User.objects.filter(pk=charlie.pk).update(avatar=alice.avatar.name)
        alice.avatar.save("mine.png", ContentFile(picture("GIF")))
    charlie.refresh_from_db()
    assert served(f"/media/{charlie.avatar.name}").status_code == 200


def test_a_deleted_account_leaves_no_picture(alice_session, alice, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        url = upload(alice_session, picture("PNG")).json()["avatar"]
        User.objects.get(pk=alice.pk).delete()
    assert default_storage.listdir("avatars")[1] == []
    assert served(url).status_code == 404


def test_the_admins_form_and_code_store_clean_pictures_too(alice, django_capture_on_commit_callbacks):
    # The admin's form is a ModelForm of the model field's form field.
    Form = modelform_factory(User, fields=["avatar"])
    form = Form({}, {"avatar": SimpleUploadedFile("a.gif", picture("GIF"))}, instance=alice)
    assert form.is_valid(), form.errors
    with django_capture_on_commit_callbacks(execute=True):
        form.save()
    assert alice.avatar.name.endswith(".png") and SECRET.encode() not in stored(alice)
    refused = Form({}, {"avatar": SimpleUploadedFile("a.png", b"<html></html>")}, instance=alice)
    assert not refused.is_valid() and "avatar" in refused.errors
    # Code that saves a file directly.
    with django_capture_on_commit_callbacks(execute=True):
        alice.avatar.save("b.webp", ContentFile(picture("WEBP")))
    data = stored(alice)
    assert alice.avatar.name.endswith(".webp") and JUNK not in data and SECRET.encode() not in data
    assert default_storage.listdir("avatars")[1] == [alice.avatar.name.split("/")[1]]  # the GIF's PNG is gone


@pytest.mark.parametrize(
    "path",
    [
        "/media/../logsvc/settings.py",
        "/media/avatars/../../conftest.py",
        "/media/%2e%2e/%2e%2e/conftest.py",
        "/media/avatars/page.html",
        "/media/avatars/drawing.svg",
        "/media/avatars/missing.png",
        "/media//etc/hostname.png",
    ],
)
def test_media_serves_nothing_but_stored_pictures(db, path):
    default_storage.save("avatars/page.html", ContentFile(b"<script>alert(1)</script>"))
    default_storage.save("avatars/drawing.svg", ContentFile(b"<svg xmlns='http://www.w3.org/2000/svg'/>"))
    assert Client().get(path).status_code == 404


def test_every_seeded_avatar_link_works(db):
    call_command("seed_social", users=30, logs=20, seed=3, no_progress=True, verbosity=0, truncate=True)
    client = Client()
    urls = set()
    for user in User.objects.exclude(avatar=""):
        r = client.get(f"/api/1/users/{user.username}/")
        urls.add(r.json()["avatar"])
    assert len(urls) > 1
    for url in urls:
        response = served(url)
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        with Image.open(io.BytesIO(b"".join(response.streaming_content))) as image:
            assert image.size == (96, 96)
