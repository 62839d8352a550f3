"""Connectors: turn web pages, sitemaps, site crawls and files into ``Document``s.

Connectors know nothing of vector stores, caches or models: they fetch, parse and clean.
"""

from connectors.base import Connector, FetchPolicy, KnownValidators, Validators
from connectors.document import Document, LoadResult, Section, SourceFailure, Unchanged

__all__ = [
    "Connector",
    "Document",
    "FetchPolicy",
    "KnownValidators",
    "LoadResult",
    "Section",
    "SourceFailure",
    "Unchanged",
    "Validators",
]
