"""Test doubles and contract suites for code built on the assistant's seams.

``FakeProvider`` is a scripted, streaming chat provider that needs no network. The contract
suites (pytest-based, imported only by the test modules that use them) state what every
implementation of a seam must do:

- ``assistant.testing.provider_contract.ProviderContract``: chat providers;
- ``assistant.testing.token_cache_contract.TokenCacheContract``: token caches;
- ``assistant.testing.vector_store_contract.VectorStoreContract``: vector stores.

Subclass one in a test module and give it the fixture it asks for; every test of the suite
then runs against your implementation. Importing this package does not import pytest.
"""

from __future__ import annotations

from assistant.testing.fake_provider import FakeProvider, FakeReply

__all__ = ["FakeProvider", "FakeReply"]
