from django.apps import AppConfig


class HookAppConfig(AppConfig):
    name = "hookapp"
    default_auto_field = "django.db.models.AutoField"
