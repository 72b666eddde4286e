"""Log records carry the current schema and correlation id."""

import logging

from django.db import connection

from mh1.context import correlation_id


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.correlation_id = correlation_id.get()
        record.schema = getattr(connection, "schema_name", "-")
        return True
