from django.db import models


class FinishedUpload(models.Model):
    """One row per finished upload, as an application attaches uploads to its models."""

    upload_id = models.CharField(max_length=200)
    idempotency_key = models.CharField(max_length=200, unique=True)
    size = models.BigIntegerField()
    path = models.TextField()
    protocol = models.CharField(max_length=40)
