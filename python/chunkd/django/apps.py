from django.apps import AppConfig


class ChunkdConfig(AppConfig):
    name = "chunkd.django"
    label = "chunkd"
    verbose_name = "chunkd uploads"

    def ready(self):
        # Only the settings are read here: under gunicorn --preload this runs in the
        # master, before the fork, and the engine must start in each worker.
        from . import conf

        conf.read()
