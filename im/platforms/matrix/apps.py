from django.apps import AppConfig


class MatrixConfig(AppConfig):
    """Installed only for its management command (``matrix_sync``); the adapter needs no tables."""

    name = "im.platforms.matrix"
    label = "matrix"
    verbose_name = "Matrix adapter"
