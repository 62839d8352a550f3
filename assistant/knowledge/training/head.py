"""A trained projection head for the late-interaction stage, and the token encoder that applies it.

The head is one linear map without bias, ``in_dimension → out_dimension`` (384 → 128 for
all-MiniLM-L6-v2), applied to the base encoder's unit-norm token vectors and followed by a
per-token L2 normalisation, so MaxSim stays a mean of cosines. It is initialised from the top
principal directions of the corpus's own token vectors and then trained on the knowledge base's
text (see ``tuning``). A head is identified by ``version``: a digest of its weights and shape,
which is also what token-cache keys carry, so vectors made with another head are never served.

Heads live in ``<data dir>/heads/<knowledge base>/<version>.safetensors``; the active one is
named in the knowledge base's own metadata (``late_head``), so every process that opens the
knowledge base uses the same head.

Example::

    head = ProjectionHead.from_principal_components(sample_tokens, out_dimension=128)
    late_encoder = ProjectedTokenEncoder(encoder, head)
    late_encoder.encode_query_tokens("reset my password").shape  # (n_tokens, 128)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from assistant.errors import ConfigError
from assistant.knowledge.encoder import TokenEncoder, TokenOffsets
from assistant.knowledge.training.match_scale import MatchScale
from assistant.knowledge.vector_store import KnowledgeBaseAdmin

__all__ = [
    "ACTIVE_HEAD_KEY",
    "BASE_HEAD_VERSION",
    "ProjectedTokenEncoder",
    "ProjectionHead",
    "head_path",
    "load_active_head",
]

logger = logging.getLogger(__name__)

ACTIVE_HEAD_KEY = "late_head"
"""Key of the knowledge-base metadata entry that names the active head's version."""

BASE_HEAD_VERSION = "base"
"""Head version of token vectors used as the base encoder produces them (the retriever's and
ingestor's default)."""

_WEIGHT = "weight"
_MATCH_SCALE = "match_scale"
_FORMAT = "projection-head/1"


class ProjectionHead(torch.nn.Module):
    """``Linear(in_dimension → out_dimension, bias=False)`` then L2 normalisation per token.

    >>> head = ProjectionHead(torch.eye(2, 3))
    >>> head.project(torch.tensor([[3.0, 4.0, 9.0]]))
    tensor([[0.6000, 0.8000]])
    """

    def __init__(self, weight: torch.Tensor) -> None:
        """Build from a (out_dimension, in_dimension) weight matrix (copied, as float32)."""
        super().__init__()
        if weight.dim() != 2 or min(weight.shape) < 1:
            raise ConfigError(
                f"a projection head needs a (out, in) weight matrix, got {tuple(weight.shape)}"
            )
        self.linear = torch.nn.Linear(int(weight.shape[1]), int(weight.shape[0]), bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(weight.detach().to(torch.float32))
        # Set by tuning when the head is kept; saved with it, outside its version (it changes no
        # token vector): how its best matches map to the base vectors' scale.
        self.match_scale: MatchScale | None = None

    @classmethod
    def from_principal_components(
        cls, token_vectors: torch.Tensor, out_dimension: int = 128
    ) -> ProjectionHead:
        """A head whose rows are the top ``out_dimension`` principal directions of a sample.

        ``token_vectors``: (n_tokens, in_dimension) base token vectors of the corpus. The
        directions come from the eigenvectors of the centred sample covariance, largest first,
        each with a fixed sign (its largest-magnitude entry positive) so the result does not
        depend on the eigensolver's sign choice.

        Raises:
            ConfigError: ``out_dimension`` is not between 1 and in_dimension, or the sample has
                fewer than two vectors.
        """
        if token_vectors.dim() != 2 or token_vectors.shape[0] < 2:
            raise ConfigError("principal components need at least two token vectors")
        in_dimension = int(token_vectors.shape[1])
        if not 1 <= out_dimension <= in_dimension:
            raise ConfigError(
                f"out_dimension must be between 1 and {in_dimension}, got {out_dimension}"
            )
        sample = token_vectors.to(torch.float64)
        centred = sample - sample.mean(dim=0, keepdim=True)
        covariance = centred.T @ centred / (sample.shape[0] - 1)
        _, eigenvectors = torch.linalg.eigh(covariance)  # ascending eigenvalues
        directions = eigenvectors.flip(dims=(1,))[:, :out_dimension].T  # (out, in)
        largest = directions.abs().argmax(dim=1, keepdim=True)
        signs = torch.sign(directions.gather(1, largest))
        signs[signs == 0] = 1.0
        return cls((directions * signs).to(torch.float32))

    @property
    def in_dimension(self) -> int:
        """Dimension of the base token vectors the head reads."""
        return int(self.linear.in_features)

    @property
    def out_dimension(self) -> int:
        """Dimension of the projected token vectors."""
        return int(self.linear.out_features)

    @property
    def version(self) -> str:
        """First 12 hex digits of the SHA-256 of the float32 weights and the shape."""
        weight = self.linear.weight.detach().to(device="cpu", dtype=torch.float32).contiguous()
        digest = hashlib.sha256(weight.numpy().astype("<f4").tobytes())
        digest.update(f"{self.in_dimension}x{self.out_dimension}".encode())
        return digest.hexdigest()[:12]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project (..., in_dimension) token vectors to unit-norm (..., out_dimension) ones."""
        projected = self.linear(tokens.to(self.linear.weight.dtype))
        return torch.nn.functional.normalize(projected, dim=-1)

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """``forward`` without gradients: (n_tokens, in_dimension) → (n_tokens, out_dimension)."""
        with torch.no_grad():
            return self.forward(tokens).detach()

    def save(self, path: Path, *, model_id: str) -> None:
        """Write the head to ``path`` (safetensors), replacing any file there in one rename.

        ``model_id`` names the base encoder the head was trained on; ``load`` checks it.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        weight = self.linear.weight.detach().to(device="cpu", dtype=torch.float32).contiguous()
        metadata = {
            "format": _FORMAT,
            "model_id": model_id,
            "version": self.version,
            "in_dimension": str(self.in_dimension),
            "out_dimension": str(self.out_dimension),
        }
        tensors = {_WEIGHT: weight}
        if self.match_scale is not None:
            tensors[_MATCH_SCALE] = torch.from_numpy(self.match_scale.to_array())
        handle, staging = tempfile.mkstemp(prefix=".head-", suffix=".tmp", dir=path.parent)
        os.close(handle)
        try:
            save_file(tensors, staging, metadata=metadata)
            os.replace(staging, path)
        finally:
            Path(staging).unlink(missing_ok=True)

    @classmethod
    def load(cls, path: Path, *, model_id: str | None = None) -> ProjectionHead:
        """Read a head written by ``save``.

        Raises:
            ConfigError: the file is missing or unreadable, is not a projection head, was
                trained on another base model than ``model_id`` (when given), or its weights do
                not match the version recorded in it.
        """
        try:
            with safe_open(str(path), framework="pt") as reader:
                metadata = reader.metadata() or {}
                weight = reader.get_tensor(_WEIGHT)
                # Heads written before the scale was recorded have none: scores pass unchanged.
                names = set(reader.keys())
                stored = reader.get_tensor(_MATCH_SCALE).numpy() if _MATCH_SCALE in names else None
                match_scale = MatchScale.from_array(stored) if stored is not None else None
        except Exception as exc:  # safetensors raises several unrelated types for a bad file
            raise ConfigError(
                f"cannot read projection head {path}: {exc}; run `assistant tune` again to "
                "write a new one"
            ) from exc
        if metadata.get("format") != _FORMAT:
            raise ConfigError(f"{path} is not a projection head file")
        trained_on = metadata.get("model_id")
        if model_id is not None and trained_on != model_id:
            raise ConfigError(
                f"projection head {path} was trained on {trained_on!r}, not {model_id!r}; run "
                "`assistant tune` again for this model"
            )
        head = cls(weight)
        head.match_scale = match_scale
        if head.version != metadata.get("version"):
            raise ConfigError(
                f"projection head {path} is corrupt: its weights do not match version "
                f"{metadata.get('version')!r}; delete it and run `assistant tune` again"
            )
        return head


class ProjectedTokenEncoder:
    """A ``TokenEncoder`` that passes a base encoder's token vectors through a projection head.

    ``model_id`` is the base's, and ``head_version`` goes into token-cache keys beside it, so
    projected vectors and base vectors never share a key.

    >>> late = ProjectedTokenEncoder(encoder, head)  # doctest: +SKIP
    >>> late.encode_document_tokens(["Refunds within 14 days."])[0].shape  # doctest: +SKIP
    torch.Size([9, 128])
    """

    def __init__(self, base: TokenEncoder, head: ProjectionHead) -> None:
        if base.token_dimension != head.in_dimension:
            raise ConfigError(
                f"projection head reads {head.in_dimension}-d token vectors but encoder "
                f"{base.model_id!r} makes {base.token_dimension}-d ones; run `assistant tune` "
                "again for this model"
            )
        self.base = base
        self.head = head
        self.model_id = base.model_id
        self.token_rows: str = getattr(base, "token_rows", "")  # a projection keeps every row
        self.token_dimension = head.out_dimension
        self.head_version = head.version

    def project(self, tokens: torch.Tensor) -> torch.Tensor:
        """Project base token vectors (n_tokens, base dim) to (n_tokens, token_dimension)."""
        return self.head.project(tokens)

    def match_on_base_scale(self, score: float) -> float:
        """A best match under this head on the base vectors' scale (``MatchScale``), or as it
        is for a head saved without one."""
        scale = self.head.match_scale
        return score if scale is None else scale.to_base(score)

    def encode_query_tokens(self, text: str) -> torch.Tensor:
        """Query token vectors, (n_tokens, token_dimension), rows unit norm."""
        return self.project(self.base.encode_query_tokens(text))

    def encode_document_tokens(self, texts: Sequence[str]) -> list[torch.Tensor]:
        """Passage token vectors, each (n_tokens_i, token_dimension), rows unit norm."""
        return [self.project(matrix) for matrix in self.base.encode_document_tokens(texts)]

    def document_token_offsets(self, texts: Sequence[str]) -> list[list[tuple[int, int]]]:
        """The base's token offsets (a projection keeps every row), empty lists when the base
        cannot tell them."""
        if isinstance(self.base, TokenOffsets):
            return self.base.document_token_offsets(texts)
        return [[] for _ in texts]

    def query_token_offsets(self, text: str) -> list[tuple[int, int]]:
        """The base's query token offsets, empty when the base cannot tell them."""
        if isinstance(self.base, TokenOffsets):
            return self.base.query_token_offsets(text)
        return []


def head_path(heads_dir: Path, version: str) -> Path:
    """Where the head ``version`` of one knowledge base is stored under its ``heads_dir``."""
    return heads_dir / f"{version}.safetensors"


def load_active_head(
    store: KnowledgeBaseAdmin, base: TokenEncoder, heads_dir: Path
) -> ProjectedTokenEncoder | None:
    """The late encoder of the head recorded as active for ``store``'s knowledge base.

    ``None`` when no head is active. A head that is recorded but cannot be used here (file
    missing, e.g. a data dir that was not copied to this machine, or trained on another model)
    is logged as a warning and the base token vectors are used instead: a missing head costs
    ranking quality, never a search.
    """
    version = store.kb_metadata().get(ACTIVE_HEAD_KEY)
    if not isinstance(version, str) or not version or version == BASE_HEAD_VERSION:
        return None
    path = head_path(heads_dir, version)
    try:
        return ProjectedTokenEncoder(base, ProjectionHead.load(path, model_id=base.model_id))
    except ConfigError as exc:
        logger.warning(
            "knowledge base %r: active projection head %s cannot be used (%s); using base token "
            "vectors. Copy %s from the machine that tuned it, or run `assistant tune --kb %s`",
            store.name,
            version,
            exc,
            heads_dir,
            store.name,
        )
        return None
