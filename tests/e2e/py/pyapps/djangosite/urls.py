from django.urls import include, path

from attachments import views

urlpatterns = [
    path("uploads/", include("chunkd.django.urls")),
    path("login/<str:name>/", views.login_as),
    path("attachments/", views.mine),
    path("finish-notes/", views.finish_notes),
]
