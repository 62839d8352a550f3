"""The API servers of ``tests/api`` for the hostile suites that probe the HTTP API."""

from tests.api.conftest import admin_key, api_server, harbor

__all__ = ["admin_key", "api_server", "harbor"]
