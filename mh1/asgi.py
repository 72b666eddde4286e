import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mh1.settings")
application = get_asgi_application()

from mh1.guards import require_production_secret  # noqa: E402

require_production_secret()
