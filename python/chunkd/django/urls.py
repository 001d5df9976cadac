from django.urls import re_path

from . import views

app_name = "chunkd"
urlpatterns = [re_path(r"^.*$", views.serve, name="serve")]
