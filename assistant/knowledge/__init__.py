"""The knowledge base: chunking, encoders, vector and lexical search, reranking, token caches."""
