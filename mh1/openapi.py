"""The OpenAPI schema class: drf-spectacular's, with read-only fields as nullable or blank as their
model fields.

DRF's ModelSerializer carries ``allow_null`` / ``allow_blank`` from the model only to writable
fields; a read-only field (every output serializer here, and explicitly declared ones such as a
``SlugRelatedField`` over a nullable foreign key) loses them, so the schema promised a string
where the API answers ``null`` and an enum where it answers ``""``. The model field is the truth.
"""

from __future__ import annotations

import copy

from django.core.exceptions import FieldDoesNotExist
from django.db import models
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from rest_framework import serializers


def _model_field(field: serializers.Field) -> models.Field | None:
    parent = getattr(field, "parent", None)
    model = getattr(getattr(parent, "Meta", None), "model", None)
    source = getattr(field, "source_attrs", None) or []
    if model is None or len(source) != 1:
        return None  # a method, a property or a path through a relation: nothing to read
    try:
        model_field = model._meta.get_field(source[0])
    except FieldDoesNotExist:
        return None
    return model_field if isinstance(model_field, models.Field) and model_field.concrete else None


class AutoSchema(SpectacularAutoSchema):
    def _map_serializer_field(self, field, direction, bypass_extensions=False):
        model_field = _model_field(field) if field.read_only else None
        if model_field is not None:
            wants_null = model_field.null and not field.allow_null
            wants_blank = (
                model_field.blank
                and isinstance(field, serializers.CharField | serializers.ChoiceField)
                and not getattr(field, "allow_blank", False)
                and not isinstance(model_field, models.ForeignKey)
            )
            if wants_null or wants_blank:
                # a copy: the serializer's own field keeps validating as declared
                field = copy.copy(field)
                field.allow_null = field.allow_null or wants_null
                if wants_blank:
                    field.allow_blank = True
        return super()._map_serializer_field(field, direction, bypass_extensions)

    def _get_serializer_field_meta(self, field, direction):
        meta = super()._get_serializer_field_meta(field, direction)
        model_field = (
            _model_field(field) if isinstance(field, serializers.Field) and field.read_only else None
        )
        if model_field is not None and model_field.null:
            meta["nullable"] = True
        return meta
