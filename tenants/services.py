"""State changes of the platform: provisioning tenants, granting access, roles, switches."""

from __future__ import annotations

import logging
import secrets
import time
from dataclasses import dataclass

from auditlog.context import set_actor
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.models import AbstractBaseUser, Group, Permission, User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone
from django_tenants.utils import get_public_schema_name, schema_exists, tenant_context

from mh1.audit import in_tenant_as_platform
from tenants.errors import TenantAlreadyExists, TenantProvisioningFailed, TenantSlugInvalid
from tenants.models import (
    RESERVED_SLUGS,
    SLUG_VALIDATOR,
    Domain,
    PlatformSettings,
    Tenant,
    TenantAccessGrant,
)
from tenants.roles import PUBLIC_ROLES, ROLE_PERMISSIONS, Role

logger = logging.getLogger(__name__)


# --- roles -------------------------------------------------------------------------------------


def roles_sync() -> dict[str, int]:
    """Make the role groups of the current schema hold exactly their mapped permissions."""
    is_public = connection.schema_name == get_public_schema_name()
    roles = PUBLIC_ROLES if is_public else Role.tenant_roles()
    synced: dict[str, int] = {}
    for role in roles:
        wanted = ROLE_PERMISSIONS[role]
        perms = list(
            Permission.objects.filter(
                content_type__app_label__in={p.split(".", 1)[0] for p in wanted}
            ).select_related("content_type")
        )
        matching = [p for p in perms if f"{p.content_type.app_label}.{p.codename}" in wanted]
        group, _ = Group.objects.get_or_create(name=role.group_name)
        group.permissions.set(matching)
        synced[role.value] = len(matching)
    return synced


def user_role(user: AbstractBaseUser) -> Role | None:
    """The role a user holds in the current schema (the first, if several)."""
    names = set(user.groups.values_list("name", flat=True))
    for role in Role:
        if role.group_name in names:
            return role
    return None


def _set_role(user: User, role: Role) -> None:
    role_groups = Group.objects.filter(name__in=[r.group_name for r in Role])
    user.groups.remove(*role_groups)
    user.groups.add(Group.objects.get(name=role.group_name))


def public_tenant_ensure() -> Tenant:
    """The platform's own tenant row (schema public) and its hosts, PUBLIC_DOMAINS."""
    connection.set_schema_to_public()
    public, _ = Tenant.objects.get_or_create(
        schema_name=get_public_schema_name(), defaults={"name": "MH1 platform", "slug": "public"}
    )
    for index, host in enumerate(settings.PUBLIC_DOMAINS):
        Domain.objects.get_or_create(domain=host, defaults={"tenant": public, "is_primary": index == 0})
    return public


# --- tenants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionedTenant:
    tenant: Tenant
    domain: Domain
    admin_username: str
    admin_password: str | None
    seconds: float


def tenant_domain_for(slug: str) -> str:
    return f"{slug}.{settings.TENANT_BASE_DOMAIN}"


def schema_name_for(slug: str) -> str:
    return slug.replace("-", "_")


def tenant_slug_validate(slug: str) -> None:
    """Refuse a slug that is malformed, reserved or already used (TenantError with the reason)."""
    try:
        SLUG_VALIDATOR(slug)
    except ValidationError as exc:
        raise TenantSlugInvalid(f"Slug {slug!r}: {exc.messages[0]}") from exc
    if slug in RESERVED_SLUGS or schema_name_for(slug) == settings.TENANT_BASE_SCHEMA:
        raise TenantSlugInvalid(f"Slug {slug!r} is reserved.")
    if (
        Tenant.objects.filter(slug=slug).exists()
        or Domain.objects.filter(domain=tenant_domain_for(slug)).exists()
    ):
        raise TenantAlreadyExists(f"A tenant with slug {slug!r} already exists.")
    if schema_exists(schema_name_for(slug)):
        raise TenantAlreadyExists(f"A schema named {schema_name_for(slug)!r} already exists.")


def tenant_create(
    *,
    acting_user: User | None,
    name: str,
    slug: str,
    admin_email: str,
    admin_full_name: str = "",
    admin_password: str | None = None,
    time_zone: str = "UTC",
) -> ProvisionedTenant:
    """Create a tenant: its schema (cloned from the template), its domain and its first admin.

    When no password is given one is generated and returned once. On any failure the half-made
    tenant and schema are removed again, so a retry starts clean.
    """
    connection.set_schema_to_public()
    slug = slug.strip().lower()
    tenant_slug_validate(slug)
    if not name.strip():
        raise TenantProvisioningFailed("A tenant needs a name.")
    if admin_password is not None:
        # before anything exists: a refused password leaves no half-made tenant behind
        login_password_validate(password=admin_password, email=admin_email, full_name=admin_full_name)
    started = time.perf_counter()
    generated = admin_password is None
    password = admin_password or secrets.token_urlsafe(12)
    tenant = Tenant(name=name.strip(), slug=slug, schema_name=schema_name_for(slug), time_zone=time_zone)
    try:
        with set_actor(acting_user):
            tenant.save(verbosity=0)  # creates the schema by cloning TENANT_BASE_SCHEMA
            domain = Domain.objects.create(domain=tenant_domain_for(slug), tenant=tenant, is_primary=True)
            with in_tenant_as_platform(tenant, acting_user):
                _ensure_policy_rows()
            access_grant(
                acting_user=acting_user,
                email=admin_email,
                full_name=admin_full_name,
                tenants=[tenant],
                role=Role.TENANT_ADMIN,
                password=password,
            )
    except Exception as exc:
        logger.exception("Provisioning tenant %s failed; removing it", slug)
        _remove_half_made(tenant)
        if isinstance(exc, TenantProvisioningFailed | ValidationError):
            raise
        raise TenantProvisioningFailed(f"Could not create tenant {slug!r}: {exc}") from exc
    seconds = time.perf_counter() - started
    logger.info("Provisioned tenant %s in %.2f s", slug, seconds)
    return ProvisionedTenant(
        tenant=tenant,
        domain=domain,
        admin_username=admin_email.lower(),
        admin_password=password if generated else None,
        seconds=seconds,
    )


def _remove_half_made(tenant: Tenant) -> None:
    connection.set_schema_to_public()
    if tenant.pk:
        Tenant.objects.filter(pk=tenant.pk).delete()
    if tenant.schema_name and schema_exists(tenant.schema_name):
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{tenant.schema_name}" CASCADE')


def _ensure_policy_rows() -> None:
    from tenants.policy.models import IcpDefinition, QuotaPolicy, RolloutSettings, SendingPolicy

    for model in (RolloutSettings, IcpDefinition, QuotaPolicy, SendingPolicy):
        model.get_solo()


@transaction.atomic
def tenant_set_active(*, acting_user: User | None, tenant: Tenant, active: bool) -> Tenant:
    """Deactivate (host answers 404, scheduled jobs skip it) or reactivate a tenant."""
    if tenant.is_public:
        raise TenantProvisioningFailed("The public tenant cannot be deactivated.")
    tenant = Tenant.objects.select_for_update().get(pk=tenant.pk)
    if tenant.is_active == active:
        return tenant
    tenant.is_active = active
    tenant.deactivated_at = None if active else timezone.now()
    with set_actor(acting_user):
        tenant.save(update_fields=["is_active", "deactivated_at"])
    return tenant


# --- access ------------------------------------------------------------------------------------


def login_password_validate(*, password: str, email: str, full_name: str = "") -> None:
    """Run AUTH_PASSWORD_VALIDATORS on a console login's password (length, common, numeric, too
    like the address or name); raise ValidationError with every reason."""
    email = email.strip().lower()
    first, _, last = full_name.strip().partition(" ")
    person = User(username=email, email=email, first_name=first, last_name=last)
    password_validation.validate_password(password, user=person)


def access_grant(
    *,
    acting_user: User | None,
    email: str,
    tenants: list[Tenant],
    role: Role,
    full_name: str = "",
    password: str | None = None,
) -> list[TenantAccessGrant]:
    """Give one person access to several tenants at once, with one role in each.

    Creates or updates the person's login in each tenant's schema (username = email). A new
    login without a password gets an unusable one until a password is set.
    """
    if role not in Role.tenant_roles():
        raise TenantProvisioningFailed(f"{role} is not a tenant role.")
    if password:
        login_password_validate(password=password, email=email, full_name=full_name)
    email = email.strip().lower()
    first, _, last = full_name.strip().partition(" ")
    grants = []
    for tenant in tenants:
        if tenant.is_public:
            raise TenantProvisioningFailed("Access is granted to client tenants, not to the platform.")
        with in_tenant_as_platform(tenant, acting_user), transaction.atomic():
            user = User.objects.filter(username=email).first() or User(username=email)
            user.email = email
            if full_name:
                user.first_name, user.last_name = first, last
            user.is_staff = True
            user.is_superuser = False
            user.is_active = True
            if password:
                user.set_password(password)
            elif not user.pk:
                user.set_unusable_password()
            user.save()
            _set_role(user, role)
        connection.set_schema_to_public()
        with transaction.atomic(), set_actor(acting_user):
            grant, _ = TenantAccessGrant.objects.update_or_create(
                email=email,
                tenant=tenant,
                defaults={
                    "full_name": full_name,
                    "role": role,
                    "is_active": True,
                    "granted_by": acting_user if acting_user and acting_user.pk else None,
                    "revoked_at": None,
                },
            )
        grants.append(grant)
    return grants


@dataclass(frozen=True)
class SetPasswordLink:
    """What happened to one tenant's set-password email: sent, or why not."""

    tenant: Tenant
    sent: bool
    error: str = ""


def access_set_password_links_send(
    *,
    acting_user: User | None,
    email: str,
    tenants: list[Tenant],
    request: HttpRequest | None = None,
) -> list[SetPasswordLink]:
    """Email a set-password link for each tenant where ``email``'s login has no usable password.

    A grant without a password leaves a login that cannot sign in; the link (Django's password
    reset token, valid PASSWORD_RESET_TIMEOUT, void once used) opens the tenant's own host, on
    the scheme and port of ``request`` when given. Each email, sent or failed, is audited on the
    person's grant. Tenants where the login already has a password are skipped.
    """
    from auditlog.models import LogEntry
    from django.contrib.auth.tokens import default_token_generator
    from django.core.mail import send_mail
    from django.template.loader import render_to_string
    from django.urls import reverse
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    from mh1.links import host_url

    email = email.strip().lower()
    results: list[SetPasswordLink] = []
    for tenant in tenants:
        with tenant_context(tenant):
            user = User.objects.filter(username=email, is_active=True).first()
            if user is None or user.has_usable_password():
                continue
            path = reverse(
                "password_reset_confirm",
                urlconf=settings.ROOT_URLCONF,  # the tenant hosts' URLs, whichever host asks
                kwargs={
                    "uidb64": urlsafe_base64_encode(force_bytes(user.pk)),
                    "token": default_token_generator.make_token(user),
                },
            )
        connection.set_schema_to_public()
        grant = TenantAccessGrant.objects.get(email=email, tenant=tenant)
        host = tenant.get_primary_domain().domain
        context = {
            "tenant_name": tenant.name,
            "email": email,
            "role": grant.get_role_display(),
            "granted_by": getattr(acting_user, "email", "") or "a platform operator",
            "link": host_url(host, path, request=request),
            "login_url": host_url(host, "/admin/", request=request),
            "valid_days": max(1, settings.PASSWORD_RESET_TIMEOUT // 86400),
        }
        subject = render_to_string("registration/set_password_subject.txt", context).strip()
        body = render_to_string("registration/set_password_email.txt", context)
        try:
            send_mail(subject, body, None, [email])
        except Exception as exc:
            # whatever the email backend raised, the grant stands: report it, audit it, go on
            logger.exception("Set-password email to %s for %s failed", email, tenant.slug)
            result = SetPasswordLink(tenant=tenant, sent=False, error=f"{exc.__class__.__name__}: {exc}")
        else:
            result = SetPasswordLink(tenant=tenant, sent=True)
        outcome = f"emailed to {email}" if result.sent else f"not sent ({result.error})"
        with transaction.atomic(), set_actor(acting_user):
            LogEntry.objects.log_create(
                grant,
                action=LogEntry.Action.UPDATE,
                changes={"set_password_link": ["", outcome[:500]]},
                force_log=True,
            )
        results.append(result)
    return results


def access_revoke(*, acting_user: User | None, grant: TenantAccessGrant) -> TenantAccessGrant:
    """Take a person's access to a tenant away: the login there is deactivated at once, and their
    API tokens deleted (a token outlives no grant). Only a new grant re-enables the login."""
    from tenants.policy.tokens import api_tokens_delete

    with in_tenant_as_platform(grant.tenant, acting_user), transaction.atomic():
        User.objects.filter(username=grant.email).update(is_active=False)
        api_tokens_delete(
            user_ids=list(User.objects.filter(username=grant.email).values_list("pk", flat=True))
        )
        # Sessions of that user in this schema end now, not when they expire.
        _end_sessions_of(grant.email)
    connection.set_schema_to_public()
    with transaction.atomic(), set_actor(acting_user):
        grant.is_active = False
        grant.revoked_at = timezone.now()
        grant.save(update_fields=["is_active", "revoked_at"])
    return grant


def login_unlock(*, acting_user: User | None, attempt_ids: list[int]) -> list[str]:
    """Lift django-axes lockouts in the current schema before they end by themselves: the failed
    attempts are forgotten, so the person can sign in at once. Audited per login; returns the
    usernames unlocked."""
    from auditlog.models import LogEntry
    from axes.models import AccessAttempt

    with transaction.atomic(), set_actor(acting_user):
        attempts = list(AccessAttempt.objects.select_for_update().filter(pk__in=attempt_ids))
        for attempt in attempts:
            LogEntry.objects.log_create(
                attempt,
                action=LogEntry.Action.DELETE,
                changes={
                    "lockout": [
                        f"{attempt.failures_since_start} failed logins from {attempt.ip_address}",
                        "unlocked",
                    ]
                },
                force_log=True,
            )
        AccessAttempt.objects.filter(pk__in=[a.pk for a in attempts]).delete()
    return [a.username for a in attempts]


def login_reactivation_check(*, username: str) -> None:
    """Inside a tenant, refuse to re-enable a login whose access the platform revoked: only a new
    grant (access_grant, by a platform operator) does that. Raises ValidationError with the reason."""
    tenant = getattr(connection, "tenant", None)
    if tenant is None or tenant.schema_name == get_public_schema_name():
        return
    revoked = TenantAccessGrant.objects.filter(
        tenant_id=tenant.pk, email=username.strip().lower(), is_active=False
    ).exists()
    if revoked:
        raise ValidationError(
            {
                "is_active": f"{username}'s access to this tenant was revoked by the platform: only a "
                "platform operator can grant it again."
            }
        )


def _end_sessions_of(username: str) -> None:
    from django.contrib.sessions.models import Session

    user_ids = {str(pk) for pk in User.objects.filter(username=username).values_list("pk", flat=True)}
    stale = [
        s.session_key
        for s in Session.objects.filter(expire_date__gt=timezone.now())
        if s.get_decoded().get("_auth_user_id") in user_ids
    ]
    Session.objects.filter(session_key__in=stale).delete()


# --- switches ----------------------------------------------------------------------------------


def global_kill_switch_set(*, acting_user: User | None, on: bool, reason: str = "") -> PlatformSettings:
    """Turn the platform-wide kill switch on (with a reason) or off."""
    if on and not reason.strip():
        raise ValidationError({"kill_switch_reason": "Say why the kill switch is on."})
    connection.set_schema_to_public()
    with transaction.atomic(), set_actor(acting_user):
        platform = PlatformSettings.get_solo()
        platform.global_kill_switch = on
        platform.kill_switch_reason = reason if on else ""
        platform.save()
    return platform


def global_kill_switch_on() -> bool:
    """Whether the platform-wide kill switch is on; readable from any schema.

    The table lives only in public, which is on every tenant connection's search path.
    """
    return PlatformSettings.objects.filter(global_kill_switch=True).exists()
