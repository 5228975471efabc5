"""Data preparation and the deterministic data order (SEEDS.md section 1, LLM360).

prepare():  documents -> BPE tokens + end-of-document token -> per-source packing into samples of
            exactly seq_length+1 tokens -> an exact hold-out count per source -> a mixture of the rest.
DataPlan:   training sample i goes to chunk i % n_chunks; the order inside chunk k is a pure function
            of (data-manifest digest, seed, k). Steps take consecutive global batches of that order,
            and rank r of W takes the strided slice r::W of each global batch, so the order does not
            depend on the world size or on restarts.

Seeds derive from sha256 strings and feed Python's random.Random, whose seeding and shuffle are
stable across Python versions: anyone can re-derive every chunk order from data-manifest.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Optional, Sequence

import torch

from glassbox_api.kinds.pretrainrun import PretrainData
from glassbox_api.store import ArtifactStore, NotFound

from ..runtime.errors import BadInput
from .sources import list_documents, read_uri_bytes

log = logging.getLogger("glassbox.data")

EOD = "<|endoftext|>"
PAD = "<|pad|>"
_EOD_CANDIDATES = (EOD, "</s>", "<|end_of_text|>", "<eos>", "[SEP]")

DATA_DIR = "data"
TOKENIZER_JSON = "tokenizer.json"
DATA_MANIFEST_JSON = "data-manifest.json"
SAMPLES_FILE = "samples.safetensors"


def derive_seed(*parts: Any) -> int:
    """A 64-bit seed from any labelled parts: sha256 of their joined string."""
    h = hashlib.sha256(":".join(str(p) for p in parts).encode()).digest()
    return int.from_bytes(h[:8], "big")


def canonical_digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# ---- tokenizer -------------------------------------------------------------------------------
def train_tokenizer(texts: Sequence[str], vocab_size: int, min_frequency: int = 2):
    """Byte-level BPE trained on texts, with the end-of-document and padding special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[EOD, PAD],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    return tok


def load_tokenizer(uri: str):
    from tokenizers import Tokenizer

    return Tokenizer.from_str(read_uri_bytes(uri, TOKENIZER_JSON).decode("utf-8"))


def eod_id(tok) -> int:
    for t in _EOD_CANDIDATES:
        i = tok.token_to_id(t)
        if i is not None:
            return i
    raise ValueError(f"tokenizer has no end-of-document token (looked for {', '.join(_EOD_CANDIDATES)})")


def tokenizer_digest(tok) -> str:
    return hashlib.sha256(tok.to_str().encode()).hexdigest()


# ---- packing ---------------------------------------------------------------------------------
def pack(docs: Sequence[Sequence[int]], eod: int, sample_len: int) -> torch.Tensor:
    """Concatenate documents, each followed by eod, and cut into rows of exactly sample_len tokens.

    The tail shorter than sample_len is dropped (counted in the data manifest).
    """
    total = sum(len(d) + 1 for d in docs)
    flat = torch.empty(total, dtype=torch.int32)
    pos = 0
    for d in docs:
        n = len(d)
        if n:
            flat[pos:pos + n] = torch.as_tensor(d, dtype=torch.int32)
        flat[pos + n] = eod
        pos += n + 1
    rows = total // sample_len
    return flat[: rows * sample_len].view(rows, sample_len).clone()


@dataclass
class PreparedData:
    """Packed samples of every source, the tokenizer and the data manifest that pins them."""

    tokenizer: Any
    tokens: torch.Tensor  # [N, seq_length+1] int32
    source: torch.Tensor  # [N] int16: index into manifest["sources"]
    manifest: dict[str, Any]

    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    @property
    def source_names(self) -> list[str]:
        return [s["name"] for s in self.manifest["sources"]]

    @property
    def seq_length(self) -> int:
        return int(self.manifest["seq_length"])

    def save(self, store: ArtifactStore) -> None:
        """Publish tokenizer, packed samples and data manifest under data/ (manifest last)."""
        from safetensors.torch import save

        store.put_bytes(f"{DATA_DIR}/{TOKENIZER_JSON}", self.tokenizer.to_str().encode())
        blob = save({"tokens": self.tokens.contiguous(), "source": self.source.contiguous()},
                    metadata={"digest": self.digest})
        store.put_bytes(f"{DATA_DIR}/{SAMPLES_FILE}", blob, sha256=self.manifest["samples_file_sha256"])
        store.write_json(f"{DATA_DIR}/{DATA_MANIFEST_JSON}", self.manifest)

    @classmethod
    def load(cls, store: ArtifactStore) -> Optional["PreparedData"]:
        """What save() published, checked against the manifest's digests; None if absent."""
        from safetensors.torch import load
        from tokenizers import Tokenizer

        try:
            manifest = store.read_json(f"{DATA_DIR}/{DATA_MANIFEST_JSON}")
        except NotFound:
            return None
        tok = Tokenizer.from_str(store.get_bytes(f"{DATA_DIR}/{TOKENIZER_JSON}").decode())
        if tokenizer_digest(tok) != manifest["tokenizer"]["digest"]:
            raise ValueError("published tokenizer does not match the data manifest")
        t = load(store.get_bytes(f"{DATA_DIR}/{SAMPLES_FILE}", sha256=manifest["samples_file_sha256"]))
        return cls(tok, t["tokens"], t["source"], manifest)


SOURCE_FIX = ("point it at data that exists where the workload runs: a path in its filesystem (a mounted "
              "volume in a pod), file://PATH, s3://BUCKET/PREFIX or stdlib://MODULE")


def read_sources(spec_data: PretrainData) -> tuple[list[list[str]], list[list[str]]]:
    """(document ids, texts) per source; a source that does not exist or is empty is BadInput."""
    texts: list[list[str]] = []
    ids: list[list[str]] = []
    for i, src in enumerate(spec_data.sources):
        where = f"spec.data.sources[{i}].uri"
        try:
            docs = list(list_documents(src.uri, fmt=src.format, text_field=src.text_field, include=src.include))
        except (FileNotFoundError, NotFound) as exc:
            raise BadInput(where, f"data source {src.name!r} ({src.uri}) does not exist", SOURCE_FIX) from exc
        if not docs:
            raise BadInput(where, f"data source {src.name!r} ({src.uri}) has no documents"
                           + (f" matching include {list(src.include)}" if src.include else ""), SOURCE_FIX)
        ids.append([d for d, _ in docs])
        texts.append([t for _, t in docs])
    return ids, texts


def spec_tokenizer(spec_data: PretrainData, texts: list[list[str]]):
    """data.tokenizer.uri loaded, else a tokenizer trained on the texts."""
    tk = spec_data.tokenizer
    if not tk.uri:
        return train_tokenizer([t for ts in texts for t in ts], tk.train.vocab_size, tk.train.min_frequency)
    try:
        return load_tokenizer(tk.uri)
    except (FileNotFoundError, NotFound) as exc:
        raise BadInput("spec.data.tokenizer.uri", f"no tokenizer at {tk.uri}",
                       "point it at a tokenizer.json (or a folder holding one), or train one with tokenizer.train") from exc


def prepare(spec_data: PretrainData, *, tokenizer=None) -> PreparedData:
    """Tokenize and pack every source of a PretrainData spec into a PreparedData."""
    from safetensors.torch import save

    L = spec_data.seq_length + 1
    ids, texts = read_sources(spec_data)
    if tokenizer is None:
        tokenizer = spec_tokenizer(spec_data, texts)
    eod = eod_id(tokenizer)

    rows, srcs, src_meta = [], [], []
    for i, (src, ts, ds) in enumerate(zip(spec_data.sources, texts, ids)):
        enc = tokenizer.encode_batch(ts, add_special_tokens=False)
        docs = [e.ids for e in enc]
        packed = pack(docs, eod, L)
        n_tokens = sum(len(d) + 1 for d in docs)
        if packed.shape[0] <= spec_data.hold_out:
            raise BadInput(
                f"spec.data.sources[{i}]",
                f"source {src.name!r} packs into {packed.shape[0]} samples of {L} tokens, not more than "
                f"holdOut={spec_data.hold_out}", "add data or lower holdOut/seqLength",
            )
        doc_digest = hashlib.sha256()
        for d, t in zip(ds, ts):
            doc_digest.update(f"{d}\0{hashlib.sha256(t.encode()).hexdigest()}\n".encode())
        rows.append(packed)
        srcs.append(torch.full((packed.shape[0],), i, dtype=torch.int16))
        src_meta.append({
            "name": src.name, "uri": src.uri, "weight": src.weight, "format": src.format,
            "include": list(src.include), "documents": len(ts), "documents_digest": doc_digest.hexdigest(),
            "tokens": n_tokens, "samples": int(packed.shape[0]), "dropped_tail_tokens": n_tokens - packed.numel(),
        })
    tokens = torch.cat(rows)
    source = torch.cat(srcs)
    samples_digest = hashlib.sha256(tokens.numpy().tobytes()).hexdigest()
    manifest: dict[str, Any] = {
        "version": 1,
        "seq_length": spec_data.seq_length,
        "sample_length": L,
        "chunks": spec_data.chunks,
        "hold_out": spec_data.hold_out,
        "seed": spec_data.seed,
        "tokenizer": {"digest": tokenizer_digest(tokenizer), "vocab_size": tokenizer.get_vocab_size(),
                      "eod_id": eod, "pad_id": tokenizer.token_to_id(PAD)},
        "sources": src_meta,
        "samples": int(tokens.shape[0]),
        "samples_digest": samples_digest,
    }
    manifest["digest"] = canonical_digest(manifest)
    blob = save({"tokens": tokens, "source": source}, metadata={"digest": manifest["digest"]})
    manifest["samples_file_sha256"] = hashlib.sha256(blob).hexdigest()
    return PreparedData(tokenizer, tokens, source, manifest)


# ---- the plan: hold-out, mixture, chunks, order ----------------------------------------------
@dataclass
class Cursor:
    """Where the data stream stands after `step` optimizer steps."""

    step: int
    samples: int  # stream samples consumed
    epoch: int
    chunk: int  # chunk index (0..n_chunks-1) of the next batch
    chunk_offset: int  # samples of that chunk consumed
    chunks_completed: int  # whole chunks consumed over all epochs


@dataclass
class DataPlan:
    """Which sample every rank trains on at every step: a pure function of its inputs."""

    manifest: dict[str, Any]
    global_batch: int
    max_steps: int = 0
    source_of: Optional[Sequence[int]] = None  # per-sample source index (from PreparedData.source)
    _orders: dict[tuple[int, int], list[int]] = field(default_factory=dict, repr=False)

    @property
    def digest(self) -> str:
        return self.manifest["digest"]

    @property
    def seed(self) -> int:
        return int(self.manifest["seed"])

    @property
    def n_chunks(self) -> int:
        return int(self.manifest["chunks"])

    def _source_rows(self) -> list[list[int]]:
        counts = [s["samples"] for s in self.manifest["sources"]]
        out, start = [], 0
        for c in counts:
            out.append(list(range(start, start + c)))
            start += c
        return out

    @cached_property
    def split(self) -> tuple[list[int], list[int]]:
        """(training samples in stream order before chunking, held-out samples), by row index."""
        held, rests = [], []
        k = int(self.manifest["hold_out"])
        for i, rows in enumerate(self._source_rows()):
            r = random.Random(derive_seed(self.digest, self.seed, "holdout", i))
            chosen = set(r.sample(range(len(rows)), k)) if k else set()
            held += [rows[j] for j in sorted(chosen)]
            rests.append([rows[j] for j in range(len(rows)) if j not in chosen])
        train: list[int] = []
        for i, (rest, take) in enumerate(zip(rests, self.mixture_counts([len(r) for r in rests]))):
            if take < len(rest):
                keep = sorted(random.Random(derive_seed(self.digest, self.seed, "mixture", i)).sample(range(len(rest)), take))
                rest = [rest[j] for j in keep]
            train += rest
        random.Random(derive_seed(self.digest, self.seed, "interleave")).shuffle(train)
        return train, held

    def mixture_counts(self, available: Sequence[int]) -> list[int]:
        """Samples taken per source: weights are mixture proportions (w_s / sum w), at the largest
        total that repeats nothing. Weights equal to the sources' sizes use every sample."""
        weights = [float(s["weight"]) for s in self.manifest["sources"]]
        total_w = sum(weights)
        scale = min(n * total_w / w for n, w in zip(available, weights))
        return [min(n, int(round(scale * w / total_w))) for n, w in zip(available, weights)]

    @property
    def train_samples(self) -> list[int]:
        return self.split[0]

    @property
    def heldout_samples(self) -> list[int]:
        return self.split[1]

    def chunk_members(self, k: int) -> list[int]:
        """Training sample i lands in chunk i % n_chunks."""
        return self.train_samples[k :: self.n_chunks]

    def chunk_order(self, k: int, epoch: int = 0) -> list[int]:
        """The order inside chunk k: a seeded shuffle keyed by (digest, seed, k[, epoch])."""
        key = (k, epoch)
        if key not in self._orders:
            order = list(self.chunk_members(k))
            parts = (self.digest, self.seed, "chunk", k) + ((epoch,) if epoch else ())
            random.Random(derive_seed(*parts)).shuffle(order)
            self._orders[key] = order
        return self._orders[key]

    @cached_property
    def steps_per_chunk(self) -> list[int]:
        """Whole global batches per chunk; a chunk's tail shorter than a batch is skipped."""
        return [len(self.chunk_members(k)) // self.global_batch for k in range(self.n_chunks)]

    @cached_property
    def steps_per_epoch(self) -> int:
        return sum(self.steps_per_chunk)

    @cached_property
    def total_steps(self) -> int:
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"no chunk holds a whole global batch of {self.global_batch} samples: "
                "use fewer chunks, a smaller batch or more data"
            )
        return self.max_steps or self.steps_per_epoch

    @cached_property
    def _chunk_ends(self) -> list[int]:
        ends, acc = [], 0
        for s in self.steps_per_chunk:
            acc += s
            ends.append(acc)
        return ends

    def locate(self, step: int) -> tuple[int, int, int]:
        """(epoch, chunk, batch index within chunk) of the 0-based optimizer step."""
        epoch, within = divmod(step, self.steps_per_epoch)
        k = bisect_right(self._chunk_ends, within)
        start = self._chunk_ends[k - 1] if k else 0
        return epoch, k, within - start

    def global_batch_at(self, step: int) -> list[int]:
        epoch, k, b = self.locate(step)
        return self.chunk_order(k, epoch)[b * self.global_batch : (b + 1) * self.global_batch]

    def rank_batch(self, step: int, rank: int, world: int) -> list[int]:
        """Rank r's share of step's global batch: the strided slice r::world."""
        return self.global_batch_at(step)[rank::world]

    def cursor(self, steps_done: int) -> Cursor:
        if steps_done == 0:
            return Cursor(0, 0, 0, 0, 0, 0)
        epoch, k, b = self.locate(steps_done - 1)
        offset = (b + 1) * self.global_batch
        completed = epoch * self.n_chunks + k
        if b + 1 == self.steps_per_chunk[k]:
            completed += 1
        return Cursor(steps_done, steps_done * self.global_batch, epoch, k, offset, completed)

    def chunk_end_steps(self) -> list[int]:
        """Step counts (1-based, up to total_steps) at which a chunk has just been finished."""
        out = []
        epoch = 0
        while True:
            for e in self._chunk_ends:
                s = epoch * self.steps_per_epoch + e
                if s > self.total_steps:
                    return sorted(set(out))
                if not out or out[-1] != s:
                    out.append(s)
            epoch += 1

    def checkpoint_steps(self, every: int) -> list[int]:
        """Where checkpoints go: every N steps, or at each chunk end (every=0); always the last step."""
        steps = list(range(every, self.total_steps + 1, every)) if every else self.chunk_end_steps()
        if not steps or steps[-1] != self.total_steps:
            steps.append(self.total_steps)
        return steps

    def order_digest(self, start: int, end: int, previous: str = "") -> str:
        """sha256 chain over the sample indices of steps [start, end): what a checkpoint saw.

        Chained with the previous checkpoint's digest, so the last one pins the whole history.
        """
        h = hashlib.sha256(previous.encode())
        for s in range(start, end):
            h.update(json.dumps(self.global_batch_at(s)).encode())
        return h.hexdigest()

    def tokens_at(self, steps_done: int) -> int:
        return steps_done * self.global_batch * int(self.manifest["seq_length"])
