"""A start-run form generated from a skill's input schema: one field per property, the schema's
types, bounds and enums as form fields, and the service's errors shown on the field they are about."""

from __future__ import annotations

from typing import Any

from django import forms

from skills.contracts import SkillContract


class CommaSeparated(forms.CharField):
    """An array input typed as a comma-separated list (integers or strings)."""

    def __init__(self, *, item_type: str, **kwargs: Any):
        self.item_type = item_type
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[Any] | None:
        text = super().to_python(value)
        if not text:
            return None
        items = [part.strip() for part in text.split(",") if part.strip()]
        if self.item_type == "integer":
            try:
                return [int(item) for item in items]
            except ValueError:
                raise forms.ValidationError("Give whole numbers separated by commas, e.g. 12, 40.") from None
        return items


def _field(name: str, prop: dict[str, Any], required: bool) -> forms.Field:
    label = prop.get("title") or name.replace("_", " ").capitalize()
    help_text = prop.get("description", "")
    kind = prop.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    common: dict[str, Any] = {"label": label, "help_text": help_text, "required": required}
    if "enum" in prop:
        choices = [(v, str(v)) for v in prop["enum"]]
        if not required:
            choices = [("", "—"), *choices]
        return forms.TypedChoiceField(
            choices=choices, coerce=type(prop["enum"][0]), empty_value=None, **common
        )
    if kind == "integer":
        return forms.IntegerField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "number":
        return forms.FloatField(min_value=prop.get("minimum"), max_value=prop.get("maximum"), **common)
    if kind == "boolean":
        return forms.BooleanField(**{**common, "required": False})
    if kind == "array":
        items = prop.get("items", {})
        if "enum" in items:
            return forms.MultipleChoiceField(
                choices=[(v, str(v)) for v in items["enum"]], widget=forms.CheckboxSelectMultiple, **common
            )
        return CommaSeparated(item_type=items.get("type", "string"), **common)
    return forms.CharField(max_length=prop.get("maxLength"), min_length=prop.get("minLength"), **common)


def start_form_class(contract: SkillContract) -> type[forms.Form]:
    """The form for ``contract``'s inputs, plus its execution mode."""
    schema = contract.input_schema
    required = set(schema.get("required", ()))
    fields: dict[str, forms.Field] = {
        name: _field(name, prop, name in required) for name, prop in schema.get("properties", {}).items()
    }
    fields["execution_mode"] = forms.ChoiceField(
        choices=[(m, m) for m in contract.modes],
        initial=contract.default_mode,
        help_text=(
            "suggest: output only; preview: actions queued for a person to see; "
            "execute: actions queued to run."
        ),
    )

    def inputs(self) -> dict[str, Any]:
        """The cleaned data as the schema wants it: empty optional fields left out."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name != "execution_mode" and value not in (None, "", [])
        }

    return type(
        f"{contract.slug.title().replace('-', '')}StartForm", (forms.Form,), {**fields, "inputs": inputs}
    )
