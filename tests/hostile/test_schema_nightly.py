"""schemathesis over the whole API with many more examples than the default run's smoke
(``tests/api/test_schema.py``, 15 per operation): hostile and malformed requests of every
shape, each answered with something the document promises and never a 5xx.

Marked ``nightly`` and left out of the default run (``addopts`` in ``pyproject.toml``); run it
with ``pytest -m nightly tests/hostile``.
"""

from __future__ import annotations

import copy

import pytest
import schemathesis
from schemathesis import Case

from assistant.assistants import AssistantConfig, BrandConfig
from tests.api.conftest import ApiServer
from tests.api.test_schema import CONFIG_DICT, DOCUMENT, Resources, _aim, resources

__all__ = ["resources"]  # the module's fixture, shared with the smoke run

NIGHTLY_EXAMPLES = 300

_config = copy.deepcopy(CONFIG_DICT)
_config["generation"]["max-examples"] = NIGHTLY_EXAMPLES
schema = schemathesis.openapi.from_dict(DOCUMENT, config=schemathesis.Config.from_dict(_config))


@pytest.mark.nightly
@schema.parametrize()
def test_every_answer_is_one_the_document_promises_at_nightly_scale(
    case: Case, api_server: ApiServer, resources: Resources, admin_key: str
) -> None:
    api_server.core.registry.put(
        resources.assistant,
        AssistantConfig(brand=BrandConfig(display_name="Harbor Help", company="Harbor")),
    )
    _aim(case, api_server, resources)
    case.call_and_validate(
        base_url=api_server.url,
        headers={"Authorization": f"Bearer {admin_key}"},
        timeout=30,
    )
