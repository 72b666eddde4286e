"""API tokens: a person's own keys for ``Authorization: Token <key>``, shown once and stored hashed.

DRF's authtoken keeps the key in clear as the primary key and its ``__str__`` (so the admin list and
"Recent actions" showed every key), and its admin lets whoever may add tokens mint one for anybody:
a tenant admin could approve as an AE. Here only a SHA-256 digest is stored (the keys are 256 random
bits, so a fast hash is enough), the key is returned once by ``api_token_create``, and a token is
always created for the acting user. Revoking a person's access deletes their tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import User
from django.db import models, transaction
from django.utils import timezone
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

KEY_PREFIX = "mh1_"
SHOWN_PREFIX = 8  # characters of the key kept to tell a person's tokens apart
# last_used_at is written at most this often per token: one UPDATE per request would be wasted work
LAST_USED_RESOLUTION = timedelta(minutes=5)


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """One API key of one person in this tenant; only its digest is kept."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100, help_text="What it is for, e.g. 'CRM sync script'.")
    prefix = models.CharField(max_length=SHOWN_PREFIX, editable=False)
    digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        app_label = "policy"
        ordering = ("-created_at", "id")
        verbose_name = "API token"
        verbose_name_plural = "my API tokens"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


@transaction.atomic
def api_token_create(*, acting_user: User, name: str) -> tuple[ApiToken, str]:
    """A new token for ``acting_user`` (never for anyone else); the key is returned only here."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=acting_user, name=name.strip() or "API token", prefix=key[:SHOWN_PREFIX], digest=key_digest(key)
    )
    return token, key


@transaction.atomic
def api_tokens_delete(*, user_ids: list[int]) -> int:
    """Delete every token of these users (their access was revoked)."""
    deleted, _ = ApiToken.objects.filter(user_id__in=user_ids).delete()
    return deleted


class ApiTokenAuthentication(TokenAuthentication):
    """``Authorization: Token <key>`` against the digests of this tenant's tokens."""

    model = ApiToken

    def authenticate_credentials(self, key: str):
        token = ApiToken.objects.select_related("user").filter(digest=key_digest(key)).first()
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        if not token.user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        now = timezone.now()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token
