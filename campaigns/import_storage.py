"""Where a CSV upload waits between its preview (a dry run) and its confirmation: one tenant's, briefly.

django-import-export's default keeps uploads in the shared temp folder under a name the confirm form
sends back, so any tenant that knows (or guesses) a name reads, imports and deletes that file. Here an
upload lives in Redis under the current schema's prefix, named by a random id we check the shape of,
and expires after ``MAX_AGE_SECONDS`` whether or not it is confirmed or cancelled.

Beside the upload's bytes a small record (``meta``) keeps who uploaded it, its file name and the
column mapping last previewed, so that the confirmation imports what the person saw, and only
they can confirm or cancel it. A confirmation ``claim``s the bytes (read and delete in one Redis
command), so two confirmations of one upload never both import it.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from import_export.tmp_storages import BaseStorage

# Long enough to read a preview of a few thousand rows and confirm it; an upload holds personal data.
MAX_AGE_SECONDS = 60 * 60
KEY_PREFIX = "mh1:import-upload"
_NAME = re.compile(r"[0-9a-f]{32}")


class UploadNotFound(Exception):
    """The upload is not this tenant's, has expired or was already used."""

    code = "import_upload_not_found"
    message = "This upload is no longer available (expired, already imported or cancelled): upload it again."

    def __str__(self) -> str:
        return self.message


def upload_name_valid(name: object) -> bool:
    return isinstance(name, str) and _NAME.fullmatch(name) is not None


def _client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=5)


def _key(schema_name: str, name: str) -> str:
    return f"{KEY_PREFIX}:{schema_name}:{name}"


class TenantUploadStorage(BaseStorage):
    """Temp storage for django-import-export, scoped to the current tenant's schema."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.schema_name = connection.schema_name

    def _checked_key(self) -> str:
        if not upload_name_valid(self.name):
            raise UploadNotFound
        return _key(self.schema_name, self.name)

    def save(self, data) -> None:
        if not self.name:
            self.name = secrets.token_hex(16)
        if isinstance(data, str):
            data = data.encode(self.encoding or "utf-8")
        _client().set(self._checked_key(), data, ex=MAX_AGE_SECONDS)

    def exists(self) -> bool:
        return upload_name_valid(self.name) and bool(_client().exists(self._checked_key()))

    def read(self):
        data = _client().get(self._checked_key())
        if data is None:
            raise UploadNotFound
        if "b" in self.read_mode:
            return data
        return data.decode(self.encoding or "utf-8")

    def remove(self) -> None:
        if upload_name_valid(self.name):
            key = self._checked_key()
            _client().delete(key, f"{key}:meta")

    # --- what the CSV import keeps beside the bytes ---------------------------------------------

    def save_meta(self, meta: dict[str, Any]) -> None:
        """Keep ``meta`` (JSON) with the upload, expiring with it."""
        key = f"{self._checked_key()}:meta"
        client = _client()
        if client.exists(key):
            client.set(key, json.dumps(meta), keepttl=True)
        else:
            client.set(key, json.dumps(meta), ex=MAX_AGE_SECONDS)

    def read_meta(self) -> dict[str, Any]:
        raw = _client().get(f"{self._checked_key()}:meta")
        if raw is None:
            raise UploadNotFound
        return json.loads(raw)

    def claim(self) -> bytes:
        """The upload's bytes, deleted in the same command: a concurrent confirmation finds it gone."""
        data = _client().getdel(self._checked_key())
        if data is None:
            raise UploadNotFound
        return data

    def give_back(self, data: bytes) -> None:
        """Put back bytes claimed by a confirmation that wrote nothing, to be confirmed again."""
        client = _client()
        ttl = client.ttl(f"{self._checked_key()}:meta")
        if ttl > 0:
            client.set(self._checked_key(), data, ex=ttl)
