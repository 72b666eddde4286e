"""``manage.py check`` reports every skill whose contract kept it from loading."""

from django.core.checks import Error, register


@register()
def skill_contracts(app_configs, **kwargs):
    from skills.registry import REFUSED

    return [
        Error(f"Skill {where} was not loaded: {'; '.join(problems)}", id="skills.E001")
        for where, problems in sorted(REFUSED.items())
    ]
