"""SEEDS.md section 1, data properties: exact packing, round-robin chunks, exact hold-out, and a
sample order that is the same for every world size and across restarts."""

from __future__ import annotations

from collections import Counter

import pytest
import torch

from glassbox_api.kinds.pretrainrun import PretrainData
from glassbox_api.store import LocalStore
from glassbox_workloads.pretrain.data import DataPlan, PreparedData, pack, prepare, train_tokenizer
from glassbox_workloads.pretrain.sources import list_documents, stdlib_root

from pretrain_tiny import tiny_spec


def test_pack_rows_have_exactly_sample_len_tokens_and_keep_document_order() -> None:
    docs = [[1, 2, 3], [4], [], [5, 6, 7, 8, 9]]
    rows = pack(docs, eod=0, sample_len=4)
    assert rows.shape == (3, 4)
    assert rows.flatten().tolist() == [1, 2, 3, 0, 4, 0, 0, 5, 6, 7, 8, 9]  # tail "0" dropped


def test_every_prepared_sample_is_seq_len_plus_one(tiny_data) -> None:
    L = tiny_spec().data.seq_length + 1
    assert tiny_data.tokens.shape[1] == L and tiny_data.tokens.dtype == torch.int32
    assert tiny_data.manifest["sample_length"] == L
    # The packed stream is the documents + end-of-document tokens, in order: decode row 0.
    eod = tiny_data.manifest["tokenizer"]["eod_id"]
    first_doc = next(list_documents("stdlib://json"))[1]
    ids = tiny_data.tokenizer.encode(first_doc, add_special_tokens=False).ids + [eod]
    assert tiny_data.tokens[0].tolist() == ids[:L]


def test_sample_i_lands_in_chunk_i_mod_n(tiny_data) -> None:
    plan = DataPlan(tiny_data.manifest, global_batch=8)
    n = plan.n_chunks
    train = plan.train_samples
    for k in range(n):
        assert plan.chunk_members(k) == [s for i, s in enumerate(train) if i % n == k]
    assert sorted(s for k in range(n) for s in plan.chunk_members(k)) == sorted(train)


def test_hold_out_counts_are_exact_per_source() -> None:
    data = prepare(PretrainData.model_validate({
        "sources": [{"name": "json", "uri": "stdlib://json"}, {"name": "csv", "uri": "stdlib://",
                                                               "include": ["csv.py", "shlex.py"]}],
        "seqLength": 32, "chunks": 4, "holdOut": 5, "seed": 3, "tokenizer": {"train": {"vocabSize": 300}},
    }))
    plan = DataPlan(data.manifest, global_batch=4)
    held = Counter(int(data.source[i]) for i in plan.heldout_samples)
    assert held == {0: 5, 1: 5}
    assert not set(plan.heldout_samples) & set(plan.train_samples)


def test_mixture_weights_are_proportions_without_repetition() -> None:
    data = prepare(PretrainData.model_validate({
        "sources": [{"name": "a", "uri": "stdlib://json", "weight": 1.0},
                    {"name": "b", "uri": "stdlib://collections", "weight": 3.0}],
        "seqLength": 32, "chunks": 2, "tokenizer": {"train": {"vocabSize": 300}},
    }))
    plan = DataPlan(data.manifest, global_batch=4)
    counts = Counter(int(data.source[i]) for i in plan.train_samples)
    assert len(set(plan.train_samples)) == len(plan.train_samples)  # nothing repeated
    assert counts[1] / counts[0] == pytest.approx(3.0, rel=0.02)
    assert max(counts[0], counts[1]) in (data.manifest["sources"][0]["samples"], data.manifest["sources"][1]["samples"])


@pytest.mark.parametrize("world", [1, 2, 4])
def test_order_is_the_same_for_world_sizes_1_2_4(tiny_data, world: int) -> None:
    # Same global batch (8) with 1, 2 or 4 workers: micro-batch x accumulation x world = 8.
    reference = DataPlan(tiny_data.manifest, global_batch=8)
    plan = DataPlan(tiny_data.manifest, global_batch=8)
    for step in range(reference.total_steps):
        shares = [plan.rank_batch(step, r, world) for r in range(world)]
        assert sorted(sum(shares, [])) == sorted(reference.global_batch_at(step))
        # Rank r's share is the strided slice r::world of the one global order.
        interleaved = [shares[i % world][i // world] for i in range(8)]
        assert interleaved == reference.global_batch_at(step)
    # The order inside a chunk does not even depend on the batch size.
    other = DataPlan(tiny_data.manifest, global_batch=2 * world)
    assert [other.chunk_order(k) for k in range(3)] == [reference.chunk_order(k) for k in range(3)]


def test_order_is_the_same_across_restarts(tiny_data, tmp_path) -> None:
    # A restart re-reads the published data (or re-prepares it): same digest, same orders.
    store = LocalStore(tmp_path)
    tiny_data.save(store)
    reloaded = PreparedData.load(store)
    again = prepare(tiny_spec().data)
    assert reloaded.digest == again.digest == tiny_data.digest
    assert torch.equal(reloaded.tokens, tiny_data.tokens)
    a, b, c = (DataPlan(d.manifest, global_batch=8) for d in (tiny_data, reloaded, again))
    for k in range(a.n_chunks):
        assert a.chunk_order(k) == b.chunk_order(k) == c.chunk_order(k)
    assert a.order_digest(0, a.total_steps) == c.order_digest(0, c.total_steps)
    # ...and it is the seed that decides it.
    other = DataPlan({**tiny_data.manifest, "seed": 8}, global_batch=8)
    assert other.chunk_order(0) != a.chunk_order(0)


def test_cursor_and_checkpoint_steps(tiny_data) -> None:
    plan = DataPlan(tiny_data.manifest, global_batch=8)
    ends = plan.chunk_end_steps()
    assert ends == [sum(plan.steps_per_chunk[: k + 1]) for k in range(plan.n_chunks)]
    assert plan.checkpoint_steps(0) == ends
    assert plan.checkpoint_steps(5)[-1] == plan.total_steps
    c = plan.cursor(ends[0])
    assert (c.chunks_completed, c.samples) == (1, ends[0] * 8)
    # The batches of chunk 0 come only from chunk 0.
    members = set(plan.chunk_members(0))
    assert all(set(plan.global_batch_at(s)) <= members for s in range(ends[0]))


def test_tokenizer_training_is_deterministic() -> None:
    texts = [t for _, t in list_documents("stdlib://json")]
    assert train_tokenizer(texts, 300).to_str() == train_tokenizer(texts, 300).to_str()


def test_stdlib_corpus_is_sorted_and_offline() -> None:
    ids = [d for d, _ in list_documents("stdlib://json")]
    assert ids == sorted(ids) and ids and all(i.endswith(".py") for i in ids)
    assert (stdlib_root() / "json" / "__init__.py").exists()
    # The same files reached from the stdlib root through an include pattern get the same ids.
    assert [d for d, _ in list_documents("stdlib://", include=["json/*.py"])] == ids
