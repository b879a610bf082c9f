"""Celery for the platform: the app, the worker and beat processes, their health, and the API's dispatcher."""

from soa_platform.worker.app import create_celery
from soa_platform.worker.dispatcher import CeleryDispatcher
from soa_platform.worker.heartbeat import healthcheck
from soa_platform.worker.process import run_beat, run_worker
from soa_platform.worker.runtime import run

__all__ = ["CeleryDispatcher", "create_celery", "healthcheck", "run", "run_beat", "run_worker"]
