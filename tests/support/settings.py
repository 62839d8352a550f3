"""Settings for tests that hold exactly the vendor variables given, whatever the process has."""

from __future__ import annotations

from pydantic import AliasChoices

from assistant.settings import Settings


def vendor_settings(environ: dict[str, str] | None = None, **values: object) -> Settings:
    """``Settings`` without a ``.env`` whose vendor keys and base URLs are ``environ`` alone.

    Every other vendor variable is passed as empty (unset), so a key in the environment of the
    test run cannot stand in for a missing one.
    """
    given = dict(environ or {})
    explicit: dict[str, object] = {}
    for name, field in Settings.model_fields.items():
        if not isinstance(field.validation_alias, AliasChoices):
            continue
        variables = Settings.environment_variable_names(name)
        chosen = next((variable for variable in variables if given.get(variable)), variables[0])
        explicit[chosen] = given.get(chosen, "")
    return Settings(_env_file=None, **explicit, **values)  # type: ignore[call-arg]
