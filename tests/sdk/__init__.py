"""Tests of the Python client and the LangChain adapters."""
