"""What a project does with finished uploads: a row per file, owned by its uploader, as
drf-chunked-upload's ``ChunkedUpload`` rows were."""

import hashlib

from django.conf import settings
from django.db import models

from chunkd.django import finished_file


class Attachment(models.Model):
    upload_id = models.CharField(max_length=128, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)


class FinishNote(models.Model):
    """Written by the post-finish hook: one per delivery key."""

    key = models.CharField(max_length=128, unique=True)
    upload_id = models.CharField(max_length=128)


def attach(sender, upload, **kwargs):
    with finished_file(upload["id"]) as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    Attachment.objects.create(upload_id=upload["id"], user_id=int(upload["owner"]), size=upload["length"], sha256=digest)
