"""Benchmark: seconds to provision one tenant (schema cloned from the template, host, first admin).

Run by hand against the development database (not part of `make test`):

    eval "$(scripts/ensure_services.sh)"; DEBUG=1 .venv/bin/python bench/tenant_creation.py --count 5

Creates tenants bench-0 … bench-N-1, prints the time of each and the median, then removes them.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from tenants.models import Tenant  # noqa: E402
from tenants.services import _remove_half_made, tenant_create  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=5)
    args = parser.parse_args()
    call_command("migrate_console", verbosity=0)
    timings = []
    created = []
    try:
        for index in range(args.count):
            slug = f"bench-{index}"
            existing = Tenant.objects.filter(slug=slug).first()
            if existing:
                _remove_half_made(existing)
            provisioned = tenant_create(
                acting_user=None,
                name=f"Bench {index}",
                slug=slug,
                admin_email=f"admin@{slug}.example",
                admin_password="bench-password",  # noqa: S106
            )
            created.append(provisioned.tenant)
            timings.append(provisioned.seconds)
            print(f"{slug}: {provisioned.seconds:.3f} s")
    finally:
        for tenant in created:
            _remove_half_made(tenant)
        connection.set_schema_to_public()
    print(
        f"tenants: {len(timings)}  median: {statistics.median(timings):.3f} s  "
        f"min: {min(timings):.3f} s  max: {max(timings):.3f} s"
    )


if __name__ == "__main__":
    main()
