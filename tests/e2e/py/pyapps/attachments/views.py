from django.contrib.auth import login
from django.contrib.auth.models import User
from django.http import HttpResponseForbidden, JsonResponse

from .models import Attachment, FinishNote


def login_as(request, name):
    """Signs in as ``name`` (created if new): the tests' stand-in for a login form."""
    user, _ = User.objects.get_or_create(username=name)
    login(request, user)
    return JsonResponse({"id": user.pk})


def mine(request):
    if not request.user.is_authenticated:
        return HttpResponseForbidden()
    rows = Attachment.objects.filter(user=request.user).values("upload_id", "size", "sha256")
    return JsonResponse({"attachments": list(rows)})


def finish_notes(request):
    return JsonResponse({"uploads": sorted(FinishNote.objects.values_list("upload_id", flat=True))})
