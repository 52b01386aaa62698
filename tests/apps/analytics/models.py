from django.db import models


class PageView(models.Model):
    path = models.CharField(max_length=200)
    viewed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return self.path
