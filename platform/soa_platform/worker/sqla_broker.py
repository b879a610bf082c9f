"""The embedded broker: kombu's SQLAlchemy transport with a short polling interval (docs/adr/0005).

kombu hands every broker transport option of this transport to `sqlalchemy.create_engine()`, which
refuses `polling_interval`; so the interval is a class attribute here, set by `create_celery` (one
broker per process) and the app names this class in `broker_transport`.
"""

from __future__ import annotations

from kombu.transport.sqlalchemy import Transport as SQLAlchemyTransport


class Transport(SQLAlchemyTransport):
    """`sqla+…` broker URLs, polled every `polling_interval` seconds when the queue is empty."""

    polling_interval = 0.2
