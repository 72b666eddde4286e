import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")
django_application = get_wsgi_application()

from connectors.ingest import InstantlyIngest  # noqa: E402
from mh1.guards import require_production_secret  # noqa: E402

require_production_secret()
# Instantly webhooks take the lean accept path (connectors.ingest); everything else is Django's.
application = InstantlyIngest(django_application)
