"""The API servers of ``tests/api`` for the hostile suites that probe the HTTP API, and the
browser and host site of ``tests/widget`` for those that render payloads."""

from tests.api.conftest import admin_key, api_server, harbor
from tests.widget.conftest import browser, host_site

__all__ = ["admin_key", "api_server", "browser", "harbor", "host_site"]
