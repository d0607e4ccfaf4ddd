"""Uploaded pictures (avatars): re-encoded by Pillow on the way in, their old files deleted on the way out.

Whatever is sent, what is stored is an image Pillow drew again: no EXIF (GPS positions, camera serials) or other
metadata, nothing appended after the image data (a polyglot HTML or ZIP), at most AVATAR_MAX_SIDE pixels a
side, in one of the few formats browsers show (PNG, JPEG, WebP; a GIF becomes its first frame, as PNG). A file
that is no such image is refused. The file name carries a hash of the stored bytes, so a name never changes
content and may be cached.

`ReencodedImageField` is the model field: every path that stores a new file (the API, the admin, code) goes
through `ReencodedImageFieldFile.save`, and a file the field no longer names (replaced, cleared, its row
deleted) is deleted from its storage once the transaction commits, unless another row still names it. Storage
is the field's (`default_storage`), never a path on disk, so another storage backend drops in.
"""

from __future__ import annotations

import hashlib
import io
import re
import warnings
from pathlib import PurePosixPath
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile, File
from django.db import models, transaction
from django.db.models.fields.files import ImageFieldFile
from django.db.models.signals import post_delete, post_save, pre_save
from PIL import Image, ImageOps, UnidentifiedImageError
from rest_framework import serializers

AVATAR_MAX_SIDE = 512
# Decoding costs memory by the pixel (4 bytes each): past this a PNG, WebP or GIF is refused, not decoded. A JPEG
# is decoded at a fraction of its size first (Image.draft), so a phone's 48 MP photo is fine.
MAX_SOURCE_PIXELS = 25_000_000
# format Pillow read -> (format stored, extension, content type)
OUTPUT = {
    "PNG": ("PNG", "png", "image/png"),
    "JPEG": ("JPEG", "jpg", "image/jpeg"),
    "MPO": ("JPEG", "jpg", "image/jpeg"),  # a phone's JPEG with a second (depth) image: the first is kept
    "WEBP": ("WEBP", "webp", "image/webp"),
    "GIF": ("PNG", "png", "image/png"),  # the first frame: no animation to hide anything in
}
CONTENT_TYPES = {extension: content_type for _, extension, content_type in OUTPUT.values()} | {"jpeg": "image/jpeg"}
REFUSED = "Upload a PNG, JPEG, WebP or GIF image."
TOO_LARGE = f"The image is too large: at most {MAX_SOURCE_PIXELS:,} pixels."


class ReencodedContent(ContentFile):
    """An image reencode() made: saved as it is."""

    reencoded = True


def reencode(upload: Any, max_side: int = AVATAR_MAX_SIDE, name: str | None = None) -> ReencodedContent:
    """The image in upload (a file, named name or by its own name), drawn again as described above, named
    <name's stem>-<hash>.<its format's extension>; ValidationError when it is no such image."""
    upload.seek(0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(upload) as source:
                if source.format not in OUTPUT:
                    raise ValidationError(REFUSED, code="invalid_image")
                if source.format in ("JPEG", "MPO"):
                    source.draft("RGB", (max_side * 2, max_side * 2))  # decoded at 1/2..1/8 scale: cheap
                if source.width * source.height > MAX_SOURCE_PIXELS:
                    raise ValidationError(TOO_LARGE, code="invalid_image")
                fmt, extension, _ = OUTPUT[source.format]
                source.seek(0)  # the first frame of an animation
                image = ImageOps.exif_transpose(source)  # turned as the camera meant, before EXIF goes
                image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
                image = _mode_for(image, fmt)
                image.info = {}  # PNG and WebP would write an ICC profile (any bytes) kept here; P mode is gone
                out = io.BytesIO()
                options = {"quality": 85, "optimize": True} if fmt in ("JPEG", "WEBP") else {"optimize": True}
                image.save(out, fmt, **options)  # no exif=, icc_profile= or pnginfo=: no metadata
    except ValidationError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValidationError(TOO_LARGE, code="invalid_image") from None
    except UnidentifiedImageError:
        raise ValidationError(REFUSED, code="invalid_image") from None
    except (OSError, ValueError, SyntaxError, EOFError):  # truncated or corrupt data
        raise ValidationError("The image could not be read: " + REFUSED, code="invalid_image") from None
    data = out.getvalue()
    stem = PurePosixPath(name or getattr(upload, "name", "") or "").stem
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:40].strip("-_") or "image"  # a safe name, in a URL too
    return ReencodedContent(data, name=f"{stem}-{hashlib.sha256(data).hexdigest()[:12]}.{extension}")


def _mode_for(image: Image.Image, fmt: str) -> Image.Image:
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if fmt == "JPEG":
        return image.convert("RGB") if image.mode not in ("RGB", "L") else image
    if image.mode in ("RGB", "RGBA", "L", "LA") and not (image.mode == "LA" and fmt == "WEBP"):
        return image
    return image.convert("RGBA" if has_alpha else "RGB")


class ReencodedImageFieldFile(ImageFieldFile):
    field: ReencodedImageField

    def save(self, name: str, content: File, save: bool = True) -> None:
        if not getattr(content, "reencoded", False):
            content = reencode(content, self.field.max_side, name=name)
        assert content.name is not None  # reencode() names what it makes; what it made was named
        super().save(content.name, content, save)


class ReencodedImageField(models.ImageField):
    """An ImageField whose files are re-encoded on the way in and deleted when no longer named (see above)."""

    attr_class = ReencodedImageFieldFile

    def __init__(self, *args: Any, max_side: int = AVATAR_MAX_SIDE, **kwargs: Any) -> None:
        self.max_side = max_side
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[Any, ...]:
        # To migrations it is the ImageField it stores as: the same column, and no migration of its own.
        name, _, args, kwargs = super().deconstruct()
        return name, "django.db.models.ImageField", args, kwargs

    def formfield(self, **kwargs: Any) -> Any:
        return super().formfield(**{"form_class": ReencodedImageFormField, "max_side": self.max_side, **kwargs})

    # Django's ImageField takes **kwargs here, as the stubs' FileField does (it ignores the Field it overrides)
    def contribute_to_class(self, cls: type[models.Model], name: str, **kwargs: Any) -> None:  # type: ignore[override]
        super().contribute_to_class(cls, name, **kwargs)
        if not cls._meta.abstract:
            pre_save.connect(self._remember_name, sender=cls, weak=False)
            post_save.connect(self._drop_replaced_file, sender=cls, weak=False)
            post_delete.connect(self._drop_deleted_file, sender=cls, weak=False)

    # The name the row holds in the database, read just before a save that may change it: on the save, not on
    # every load (a post_init receiver would cost each user a timeline page shows).
    def _stored_key(self) -> str:
        return f"_{self.attname}_stored_name"

    def _saves_field(self, update_fields: Any) -> bool:
        return update_fields is None or self.name in update_fields or self.attname in update_fields

    def _remember_name(self, instance: models.Model, update_fields: Any = None, **kwargs: Any) -> None:
        if instance.pk is None or not self._saves_field(update_fields):
            return
        rows = type(instance)._base_manager.using(instance._state.db).filter(pk=instance.pk)
        instance.__dict__[self._stored_key()] = rows.values_list(self.attname, flat=True).first() or ""

    def _drop_replaced_file(self, instance: models.Model, update_fields: Any = None, **kwargs: Any) -> None:
        if not self._saves_field(update_fields):
            return
        before = instance.__dict__.pop(self._stored_key(), "")
        now = getattr(instance, self.attname).name or ""
        if before and before != now:
            self._delete_later(instance, before)

    def _drop_deleted_file(self, instance: models.Model, **kwargs: Any) -> None:
        if name := getattr(instance, self.attname).name:
            self._delete_later(instance, name)

    def _delete_later(self, instance: models.Model, name: str) -> None:
        model, storage, field = type(instance), self.storage, self.attname

        def delete() -> None:
            if not model._default_manager.filter(**{field: name}).exists():  # seeded users share pictures
                storage.delete(name)

        transaction.on_commit(delete, using=instance._state.db)


class ReencodedImageFormField(forms.ImageField):
    """The form field (the admin's): the cleaned value is the re-encoded file, or the form's error."""

    def __init__(self, *args: Any, max_side: int = AVATAR_MAX_SIDE, **kwargs: Any) -> None:
        self.max_side = max_side
        super().__init__(*args, **kwargs)

    def to_python(self, data: Any) -> Any:
        upload = super().to_python(data)
        return None if upload is None else reencode(upload, self.max_side)


class ReencodedImageSerializerField(serializers.FileField):
    """The API's field: a 400 in the field's list when the upload is no image we take. (A FileField: DRF's
    ImageField would decode the upload once more, only to check it.)"""

    def __init__(self, *args: Any, max_side: int = AVATAR_MAX_SIDE, **kwargs: Any) -> None:
        self.max_side = max_side
        super().__init__(*args, **kwargs)
        self.max_length = None  # the name sent is not the name stored (reencode makes a short one)

    def to_internal_value(self, data: Any) -> Any:
        upload = super().to_internal_value(data)
        try:
            return reencode(upload, self.max_side)
        except ValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


# Every ModelSerializer maps the model field to the API field, as DRF does for ImageField.
serializers.ModelSerializer.serializer_field_mapping[ReencodedImageField] = ReencodedImageSerializerField
