"""Training of the late-interaction stage on a knowledge base's own text.

``tuning.tune_knowledge_base`` makes pseudo-queries (``pseudo_pairs``), trains a projection head
(``head_training``) and keeps it when the shipped ranking improves on held-out queries
(``held_out``). ``head`` holds the head itself and the token encoder that applies it: the only
part query time needs, and importable without the training code (this package imports nothing
eagerly).
"""
