from mh1.celery import app as celery_app

__all__ = ("celery_app",)
