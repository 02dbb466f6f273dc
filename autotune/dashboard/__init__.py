"""The web dashboard: ``create_app(storage)`` and ``autotune dashboard``."""

from autotune.dashboard.app import create_app

__all__ = ["create_app"]
