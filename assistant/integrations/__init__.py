"""Adapters that let other frameworks use the assistant's parts.

Each adapter is a module of its own that imports its framework; nothing else in the package
imports them, so the framework is needed only by applications that use the adapter:

- ``assistant.integrations.langchain`` (``pip install 'assistant-rag[langchain]'``): the
  assistant's search as a LangChain retriever, MaxSim reranking as a document compressor.
"""

__all__: list[str] = []
