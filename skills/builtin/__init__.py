"""The built-in skills; importing this package registers them."""

from skills.builtin import icp_scoring  # noqa: F401
from skills.builtin import campaign_crafter  # noqa: F401
