"""The built-in skills; importing this package registers them."""

from skills.builtin import campaign_crafter, data_quality, icp_scoring, lifecycle_audit, reply_handler  # noqa: F401
