"""The OpenAPI document against the running API.

schemathesis reads the document the application publishes and generates requests for every
operation, valid ones and invalid ones, sent with the admin key to the module's server, over
the ``harbor`` assistant and real resources of it (a conversation, a turn, a key, a job), so
the requests reach the code behind the 404s. Every answer must be something the document
promises: no 5xx, a documented status code and content type, a body and headers that match
the documented schema.

Two plain tests check the document itself: every route of the application is in it (except
the documentation pages and the demo page), and every operation declares the errors it can
answer with, as ``application/problem+json`` (``/v1`` speaks OpenAI's error shape instead).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi.routing import iter_route_contexts
from schemathesis import Case

from assistant.api import create_app
from assistant.api.keys import KeyStore
from assistant.assistants import AssistantConfig, BrandConfig
from assistant.jobs.store import JobSpec, JobStore
from assistant.settings import Settings
from tests.api.conftest import ApiServer

# The document depends on the routes only, so an application that is never started gives it.
DOCUMENT: dict[str, Any] = create_app(Settings(_env_file=None)).openapi()  # type: ignore[call-arg]

MAX_EXAMPLES = 15

CONFIG_DICT: dict[str, Any] = {
    "checks": {
        # What the document promises; the checks that guess at semantics (that a valid
        # request is accepted, say, when it names a conversation that does not exist) are off.
        "enabled": False,
        "not_a_server_error": {"enabled": True},
        "status_code_conformance": {"enabled": True},
        "content_type_conformance": {"enabled": True},
        "response_schema_conformance": {"enabled": True},
        "response_headers_conformance": {"enabled": True},
    },
    "generation": {
        "max-examples": MAX_EXAMPLES,
        # The same requests on every run, nothing written to disk, and a failure is
        # reported as found rather than shrunk (shrinking costs many more requests).
        "deterministic": True,
        "database": "none",
        "no-shrink": True,
    },
    # Stateful runs chain operations through the document's links; deleting the assistant
    # under test that way would turn the rest of the module into 404s.
    "phases": {"stateful": {"enabled": False}},
}
CONFIG = schemathesis.Config.from_dict(CONFIG_DICT)

schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# Pages served for people, not part of the API.
UNDOCUMENTED_ROUTES = {
    ("GET", "/openapi.json"),
    ("GET", "/docs"),
    ("GET", "/docs/oauth2-redirect"),
    ("GET", "/redoc"),
    ("GET", "/"),
    ("GET", "/a/{name}"),
    ("GET", "/page.css"),
    ("GET", "/widget.js"),
    ("GET", "/widget.mjs"),
    ("GET", "/widget/{file}"),
    # The admin console's pages and its sign-in form.
    ("GET", "/admin"),
    ("GET", "/admin/console.css"),
    ("GET", "/admin/session"),
    ("POST", "/admin/session"),
    ("POST", "/admin/logout"),
}
PUBLIC_OPERATIONS = {"GET /healthz", "GET /readyz"}
# Errors particular to one operation, beyond those every operation of its kind declares.
SPECIFIC_ERRORS = {
    "POST /api/assistants": {409},
    "POST /api/assistants/{name}/sources/upload": {413, 415},
}
PROBLEM_SCHEMA = "#/components/schemas/Problem"
OPENAI_ERROR_SCHEMA = "#/components/schemas/OpenAIError"
HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options", "trace"}


@dataclass(frozen=True)
class Resources:
    """Real resources of the assistant under test, for the operations that name them."""

    assistant: str
    conversation_id: str
    turn_id: int
    job_id: str


@pytest.fixture(scope="module")
def resources(api_server: ApiServer, harbor: str) -> Resources:
    """A conversation with one turn, and a queued job, on ``harbor``."""
    core = api_server.core
    answer = core.chat("How do I reset my password?", kb=harbor)
    assert answer.conversation_id is not None and answer.turn_id is not None
    # Recorded but never queued, so it stays as it is while the module runs.
    job = JobStore(core.database).create(harbor, "resync", JobSpec())
    return Resources(harbor, answer.conversation_id, answer.turn_id, job.id)


def _aim(case: Case, api_server: ApiServer, resources: Resources) -> None:
    """Point the case's path at resources that exist, so it gets past the lookups.

    The operations that delete get a resource of their own each time: deleting the shared
    ones would leave the cases after them nothing but 404s.
    """
    parameters = case.path_parameters
    if not parameters:
        return
    core = api_server.core
    operation = f"{case.method.upper()} {case.path}"
    values: dict[str, object] = {
        "name": resources.assistant,
        "conversation_id": resources.conversation_id,
        "turn_id": resources.turn_id,
        "job_id": resources.job_id,
    }
    if operation == "DELETE /api/assistants/{name}":
        doomed = f"doomed-{uuid.uuid4().hex[:8]}"
        core.ingest_connectors([], kb=doomed)
        core.registry.put(doomed, AssistantConfig())
        values["name"] = doomed
    elif operation == "DELETE /api/assistants/{name}/keys/{key_id}":
        key, _ = KeyStore(core.database).create(resources.assistant, "secret", "")
        values["key_id"] = key.id
    elif operation == "DELETE /api/assistants/{name}/conversations/{conversation_id}":
        answer = core.chat("What does Harbor Sync do?", kb=resources.assistant)
        values["conversation_id"] = answer.conversation_id
    for name in parameters:
        if name in values:
            parameters[name] = values[name]


@pytest.mark.slow
@schema.parametrize()
def test_every_answer_is_one_the_document_promises(
    case: Case, api_server: ApiServer, resources: Resources, admin_key: str
) -> None:
    # Each case starts from the same settings: an earlier PATCH may have changed them.
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


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield method.upper(), path, operation


def test_every_route_is_documented_and_every_operation_is_a_route(api_server: ApiServer) -> None:
    with api_server.client() as client:
        served = client.get("/openapi.json").json()
    # The document the cases above come from is the one the server publishes.
    assert served == DOCUMENT
    routes = {
        (method, str(route.path))
        for route in iter_route_contexts(api_server.app.routes)
        for method in route.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(method, path) for method, path, _ in _operations(served)}
    assert routes - documented == UNDOCUMENTED_ROUTES
    assert documented <= routes


def _expected_errors(method: str, path: str, operation: dict[str, Any]) -> set[int]:
    label = f"{method} {path}"
    if label in PUBLIC_OPERATIONS:
        return set()
    expected = {401, 403}
    if "{" in path:
        expected.add(404)
    if operation.get("parameters") or "requestBody" in operation:
        expected.add(422)
    if "application/json" in operation.get("requestBody", {}).get("content", {}):
        expected.add(400)  # a body that is not JSON
    return expected | SPECIFIC_ERRORS.get(label, set())


def _error_schemas(response: dict[str, Any]) -> dict[str, str | None]:
    return {
        media_type: content.get("schema", {}).get("$ref")
        for media_type, content in response.get("content", {}).items()
    }


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        pytest.param(*operation, id=f"{operation[0]} {operation[1]}")
        for operation in _operations(DOCUMENT)
    ],
)
def test_every_operation_declares_its_errors(
    method: str, path: str, operation: dict[str, Any]
) -> None:
    responses: dict[str, dict[str, Any]] = operation["responses"]
    declared = {int(status) for status in responses if status.isdigit()}
    missing = sorted(_expected_errors(method, path, operation) - declared)
    errors = {
        status: _error_schemas(response)
        for status, response in responses.items()
        if status.isdigit() and int(status) >= 400
    }
    if path.startswith("/v1/"):
        # OpenAI's clients parse OpenAI's error body, so these routes answer with it.
        wrong = {s: e for s, e in errors.items() if e != {"application/json": OPENAI_ERROR_SCHEMA}}
    elif f"{method} {path}" == "GET /readyz":
        wrong = {}  # its 503 is the readiness report itself, naming what is down
    else:
        wrong = {
            s: e for s, e in errors.items() if e.get("application/problem+json") != PROBLEM_SCHEMA
        }
    assert not missing and not wrong, (
        f"undeclared error statuses: {missing}; errors not declared as problem documents: {wrong}"
    )
