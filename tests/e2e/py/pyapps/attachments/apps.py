from django.apps import AppConfig


class AttachmentsConfig(AppConfig):
    name = "attachments"

    def ready(self):
        from chunkd.django.signals import upload_finished

        from .models import attach

        upload_finished.connect(attach)
