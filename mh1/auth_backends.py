"""Django's model permissions, read in one statement a request instead of two.

``ModelBackend`` reads a person's own permissions and their groups' in two queries the first time a
page asks ``has_perm``; every admin page asks. Roles are groups here (``tenants.roles``), so both
sets are read together: ``auth_permission`` joined to the person's grants and their groups' grants.
Everything else (``is_active``, superusers, object permissions: none, those are guardian's) is
ModelBackend's own behaviour.
"""

from __future__ import annotations

from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission, User
from django.db.models import Q


class OneQueryModelBackend(ModelBackend):
    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if not hasattr(user_obj, "_perm_cache"):
            permissions = Permission.objects.all()
            if not user_obj.is_superuser:
                # each permission row once: IN the person's grants or IN their groups' grants
                own = User.user_permissions.through.objects.filter(user_id=user_obj.pk)
                roles = Group.permissions.through.objects.filter(group__user=user_obj.pk)
                permissions = permissions.filter(
                    Q(pk__in=own.values("permission_id")) | Q(pk__in=roles.values("permission_id"))
                )
            rows = permissions.values_list("content_type__app_label", "codename").order_by()
            user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in rows}
        return user_obj._perm_cache
