"""Queue names, in one place."""

from enum import StrEnum


class Queue(StrEnum):
    DEFAULT = "default"
    # Tasks that cause external effects; a separate queue so a flood of housekeeping never
    # delays an approved action.
    EFFECTS = "effects"
