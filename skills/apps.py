from django.apps import AppConfig


class SkillsConfig(AppConfig):
    name = "skills"
    verbose_name = "Skills"

    def ready(self) -> None:
        # importing the built-in skills registers them (and refuses an incomplete contract)
        from skills import builtin, checks  # noqa: F401
