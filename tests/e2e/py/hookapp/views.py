import json
import threading

from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from hook_receiver import signature_ok

from .models import FinishedUpload


class Deliveries:
    """Every delivery seen, accepted or not, for the tests to inspect."""

    def __init__(self):
        self.secret = b""
        self.down = False
        self.seen = []  # (type, upload id, idempotency key, accepted)
        self.bad_signatures = 0
        self.changed = threading.Condition()

    def wait_for(self, predicate, timeout=30):
        with self.changed:
            if not self.changed.wait_for(lambda: predicate(self.seen), timeout=timeout):
                raise AssertionError(f"deliveries never satisfied the test: {self.seen}")
            return list(self.seen)


DELIVERIES = Deliveries()


@csrf_exempt
def hooks(request):
    body = request.body
    if not signature_ok(DELIVERIES.secret, request.headers.get("Chunkd-Signature", ""), body):
        DELIVERIES.bad_signatures += 1
        return HttpResponse("bad signature", status=401)
    hook = json.loads(body)
    kind, event = hook["Type"], hook["Event"]
    upload = event["Upload"]
    key = request.headers.get("Idempotency-Key", "")
    accepted = not DELIVERIES.down
    if accepted and kind == "post-finish":
        FinishedUpload.objects.get_or_create(
            idempotency_key=key,
            defaults={
                "upload_id": upload["ID"],
                "size": upload["Size"],
                "path": upload["Storage"].get("Path") or upload["Storage"].get("Key", ""),
                "protocol": event.get("Protocol", ""),
            },
        )
    with DELIVERIES.changed:
        DELIVERIES.seen.append((kind, upload["ID"], key, accepted))
        DELIVERIES.changed.notify_all()
    if not accepted:
        return HttpResponse("down for maintenance", status=503)
    return JsonResponse({})
