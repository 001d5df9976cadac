from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("attachments", "0001_initial")]
    operations = [
        migrations.CreateModel(
            name="FinishNote",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("key", models.CharField(max_length=128, unique=True)),
                ("upload_id", models.CharField(max_length=128)),
            ],
        ),
    ]
