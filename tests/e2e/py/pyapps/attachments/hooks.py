"""The project's upload hooks: a quota per user, and a note of every finished file in
the database, from the outbox (at least once, so keyed)."""

import chunkd

from .models import FinishNote

QUOTA = 4 << 20


class UploadHooks:
    def pre_create(self, event):
        upload = event["Event"]["Upload"]
        if (upload["Size"] or 0) > QUOTA:
            raise chunkd.Reject(413, f"over your quota of {QUOTA} bytes")
        if upload["MetaData"].get("filename", "").endswith(".exe"):
            return {"RejectUpload": True, "HTTPResponse": {"StatusCode": 415, "Body": "no programs"}}
        return None

    def post_finish(self, event):
        upload = event["Event"]["Upload"]
        FinishNote.objects.get_or_create(key=event["IdempotencyKey"], defaults={"upload_id": upload["ID"]})
