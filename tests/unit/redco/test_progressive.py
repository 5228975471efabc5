"""progressive (SEEDS-DETAIL 6.2): nested stage vocabularies equal to an sklearn reference, stage
texts as subsequences, the training noise, the chained input string."""

from __future__ import annotations

import random

import numpy as np
import pytest

pytest.importorskip("sklearn")

from glassbox_workloads.recipes import progressive as pg  # noqa: E402

PLAN = ["volcano", "glacier", "harbor", "meteor", "canyon", "lantern", "orchard", "tundra", "falcon", "prairie",
        "walrus", "quarry", "beacon", "lagoon", "thistle", "citadel", "marmot", "geyser", "fjord", "bramble"]


def _texts(n: int = 80, seed: int = 0) -> list[str]:
    """Templates (16 frequent non-stop words each) filled with 5 rare plan words."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w = rng.sample(PLAN, 5)
        out.append(f"Yesterday morning reporters described the {w[0]} near the {w[1]} and the {w[2]}.\n"
                   f"Officials later said the {w[3]} looked like a {w[4]} during weather reports, people noted "
                   "quietly today.")
    return out


def _reference(texts: list[str], rate: float, min_df: int) -> list[str]:
    """The vocabulary computed directly from sklearn's matrix, written independently."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(min_df=min_df, stop_words="english")
    x = vec.fit_transform(texts).toarray()
    names = list(vec.get_feature_names_out())
    mean = {w: x[:, j][x[:, j] > 0].mean() for j, w in enumerate(names)}
    ranked = sorted(names, key=lambda w: (-mean[w], w))
    analyze = vec.build_analyzer()
    tokens = [t for text in texts for t in analyze(text)]
    vocab = []
    for w in ranked:
        vocab.append(w)
        if sum(t in set(vocab) for t in tokens) / len(tokens) > rate:
            break
    return vocab


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_stage_vocabulary_equals_the_sklearn_reference(rate):
    texts = _texts()
    assert pg.stage_vocab(texts, rate, min_df=5) == _reference(texts, rate, 5)


def test_vocabularies_are_nested_and_cover_more_than_the_rate():
    texts = _texts()
    analyze = pg.analyzer()
    tokens = [t for text in texts for t in analyze(text)]
    v1, v2 = pg.stage_vocab(texts, 0.2), pg.stage_vocab(texts, 0.25)
    assert v2[: len(v1)] == v1
    assert sum(t in set(v1) for t in tokens) / len(tokens) > 0.2
    everything = pg.stage_vocab(texts, 1.0)  # exhausted: every word with min_df, coverage may stay <= 1
    assert len(everything) == len(set(everything)) and set(v2) <= set(everything)


def test_planted_plan_words_make_the_first_quarter_vocabulary():
    v = pg.stage_vocab(_texts(), 0.25)
    assert sum(w in v for w in PLAN) >= 0.9 * len(PLAN) and len(set(v) - set(PLAN)) <= 1


def test_stage_texts_are_subsequences_of_the_next_stage_and_in_vocabulary():
    texts = _texts()
    v1, v2 = pg.stage_vocab(texts, 0.2), pg.stage_vocab(texts, 0.5)
    for text in texts[:10]:
        s1, s2 = pg.stage_text(text, v1), pg.stage_text(text, v2)
        assert s1.count("\n") == s2.count("\n") == text.count("\n")
        for p1, p2 in zip(s1.split("\n"), s2.split("\n")):
            it = iter(p2.split())
            assert all(tok in it for tok in p1.split())  # subsequence
            assert set(p1.split()) <= set(v1)
    assert pg.stage_text("The VOLCANO, the glacier!\nnothing here", {"volcano", "glacier"}) == "volcano glacier\n"


def test_noise_keeps_counts_and_condition_uses_the_vocabulary_and_is_seeded():
    vocab = ["zz1", "zz2", "zz3"]
    text = pg.stage_input("a story about ships", "alpha beta gamma delta\nepsilon zeta eta theta iota kappa")
    assert pg.add_noise(text, vocab, random.Random(0), prob=0.0) == text
    noised = pg.add_noise(text, vocab, random.Random(1), prob=0.5)
    assert noised == pg.add_noise(text, vocab, random.Random(1), prob=0.5)
    cond, body = noised.split(pg.SEP)
    assert cond == "a story about ships"
    orig = text.split(pg.SEP)[1]
    for a, b in zip(orig.split("\n"), body.split("\n")):
        assert len(a.split()) == len(b.split())
        assert all(y == x or y in vocab for x, y in zip(a.split(), b.split()))


def test_noise_rate_is_about_point_19():
    words = [f"w{i}" for i in range(5000)]
    noised = pg.add_noise(" ".join(words), ["zz"], random.Random(3)).split()
    rate = np.mean([a != b for a, b in zip(words, noised)])
    assert 0.13 < rate < 0.2  # 0.1 (1 + .5 + .25 + .125) = 0.1875, less overlapping runs


def test_stage_inputs_chain_condition_sep_previous_stage():
    assert pg.stage_input("cond", "prev text") == "cond [SEP] prev text"
    texts = _texts()
    vocabs = [pg.stage_vocab(texts, 0.25)]
    ex = [{"condition": "a tale", "text": texts[0]}]
    s1, s2 = pg.stage_examples(ex, vocabs, 1)[0], pg.stage_examples(ex, vocabs, 2)[0]
    assert s1 == {"source": "a tale", "target": pg.stage_text(texts[0], vocabs[0])}
    assert s2 == {"source": "a tale [SEP] " + s1["target"], "target": texts[0]}


def _spec(**progressive):
    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec

    return ShardedFinetuneSpec.model_validate({
        "model": {"architecture": "bart", "config": {"hiddenSize": 32, "numLayers": 1, "numHeads": 2}},
        "data": {"train": {"uri": "x.jsonl"}, "maxSourceLength": 256, "maxTargetLength": 256},
        "recipe": {"name": "progressive", "progressive": {"stages": [0.25], **progressive}},
    })


def _build(spec, arch="bart", examples=None, stage=None):
    """build_recipe (stage 1), or the recipe of another stage of the same vocabularies."""
    from glassbox_workloads.finetune.setup import build_recipe, progressive_recipe, progressive_vocabs
    from glassbox_workloads.flax_models import tiny_config
    from glassbox_workloads.recipes import ByteTokenizer

    examples = examples if examples is not None else [{"condition": f"tale {i}", "text": t} for i, t in enumerate(_texts())]
    cfg, tok = tiny_config(arch), ByteTokenizer()
    if stage is None:
        return build_recipe(spec, None, cfg, tok, examples), examples
    return progressive_recipe(spec, None, cfg, tok, progressive_vocabs(spec, cfg, examples), stage), examples


def test_an_old_per_stage_resource_is_refused_naming_the_field_and_the_fix():
    """Session 5's layout (one resource per stage, progressive.stage) fails with what to do instead."""
    from glassbox_api.resource import InvalidResource, parse_resource

    doc = {"apiVersion": "glassbox.dev/v1alpha1", "kind": "ShardedFinetune", "metadata": {"name": "pg-stage2"},
           "spec": _spec().wire()}
    doc["spec"]["recipe"]["progressive"]["stage"] = 2
    with pytest.raises(InvalidResource) as err:
        parse_resource(doc)
    [e] = err.value.errors
    assert e.path == "spec.recipe.progressive.stage"
    assert "one ShardedFinetune now trains every stage" in e.message and "delete stage" in e.message


@pytest.mark.parametrize("arch,examples,over,field", [
    ("gpt2", None, {}, "spec.model.architecture"),
    ("bart", [{"text": "no condition"}], {}, "spec.data.train"),
    ("bart", [{"condition": "c", "text": "only one document"}], {"vocab": {"minDf": 5}}, "spec.recipe.progressive.vocab.minDf"),
])
def test_progressive_recipe_refuses_what_it_cannot_train_naming_the_field(arch, examples, over, field):
    from glassbox_workloads.runtime.errors import BadInput

    with pytest.raises(BadInput) as err:
        _build(_spec(**over), arch, examples)
    assert err.value.field == field


def test_progressive_stage_2_trains_on_noised_stage_text_and_predicts_from_clean_text():
    from glassbox_workloads.recipes import ByteTokenizer

    tok = ByteTokenizer()
    recipe, examples = _build(_spec(noise={"prob": 0.5}), stage=2)
    vocab = pg.stage_vocab([e["text"] for e in examples], 0.25)
    clean = pg.stage_examples(examples[:4], [vocab], 2)

    def sources(batch, key):
        return [tok.decode([t for t in row if t > 2]) for row in batch[key]]

    train_src = sources(recipe.collate_fn(examples[:4]), "input_ids")
    pred_src = sources(recipe.pred_collate_fn(examples[:4]), "input_ids")
    assert pred_src == [c["source"] for c in clean]
    assert train_src != pred_src and all(s.startswith(f"tale {i} [SEP] ") for i, s in enumerate(train_src))
    assert train_src == sources(recipe.collate_fn(examples[:4]), "input_ids")  # seeded
    labels = recipe.collate_fn(examples[:1])["labels"][0]
    assert tok.decode([t for t in labels if t > 2]) == examples[0]["text"]  # the last stage is the text


def _tiny_doc(**training) -> dict:
    """The tiny example's spec with absolute data paths and a few steps per stage."""
    from pathlib import Path

    import yaml

    root_dir = Path(__file__).resolve().parents[3]
    doc = yaml.safe_load((root_dir / "examples/finetune-progressive-tiny.yaml").read_text())["spec"]
    for part in ("train", "eval"):
        doc["data"][part]["uri"] = str(root_dir / doc["data"][part]["uri"])
    doc["data"]["eval"]["limit"] = 4
    doc["generation"]["maxNewTokens"] = 8
    doc["training"].update(training)
    return doc


@pytest.mark.slow
def test_tiny_progressive_example_trains_every_stage_and_publishes_their_checkpoints_and_chain(tmp_path):
    import json

    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
    from glassbox_api.manifest import read_manifest
    from glassbox_api.store import open_store, sha256_bytes
    from glassbox_workloads import finetune

    root = open_store(tmp_path / "store")
    run_store = root.sub("default/shardedfinetune/pg-0000abcd")
    spec = ShardedFinetuneSpec.model_validate(_tiny_doc(maxSteps=2, checkpointEvery=2))
    res = finetune.run(spec, run_store, root=root, name="pg")
    texts = [json.loads(line)["text"] for line in open(spec.data.train.uri)]
    m = read_manifest(run_store)
    assert res.steps == 4 and m.state == "completed" and m.total_steps == 4
    assert [(c.step, c.stage.index, c.stage.step, c.path) for c in m.checkpoints] == [
        (2, 1, 2, "stages/1/checkpoints/00000002"), (4, 2, 2, "stages/2/checkpoints/00000002")]
    for c in m.checkpoints:  # each stage: its weights in HF layout and the vocabularies, listed with sha256
        files = {f.path: f for f in c.files}
        assert {"model.safetensors", "config.json", "vocab.json"} <= set(files) and "rouge1" in c.evals
        body = run_store.get_bytes(f"{c.path}/vocab.json")
        assert sha256_bytes(body) == files["vocab.json"].sha256
        [v] = json.loads(body)["vocabularies"]
        assert v == {"rate": 0.25, "words": pg.stage_vocab(texts, 0.25, 5)}
    chain = m.final["chain"]
    rows = json.loads(run_store.get_bytes(chain["path"]))
    assert sha256_bytes(run_store.get_bytes(chain["path"])) == chain["sha256"]
    assert len(rows) == 4 and all(len(r["stages"]) == 2 and len(r["gold"]) == 2 for r in rows)
    assert [s["checkpoint"] for s in m.final["stages"]] == [c.path for c in m.checkpoints]


@pytest.mark.slow
def test_a_run_killed_mid_stage_2_resumes_there_without_retraining_or_duplicating(tmp_path):
    """GLASSBOX_KILL_AT_STEP at run step 7 (stage 2, step 3 of 4; its last checkpoint is stage 2
    step 2): the rerun restores stage 2 at its step 2, trains steps 7 and 8, and leaves stage 1's
    checkpoints as they were; the manifest lists each checkpoint once."""
    import os
    import subprocess
    import sys

    import yaml

    from glassbox_api.manifest import read_manifest
    from glassbox_api.store import LocalStore

    doc = _tiny_doc(maxSteps=4, checkpointEvery=2)
    del doc["data"]["eval"]  # no evaluation or chain: the resume is the point
    f = tmp_path / "pg.yaml"
    f.write_text(yaml.safe_dump({"apiVersion": "glassbox.dev/v1alpha1", "kind": "ShardedFinetune",
                                 "metadata": {"name": "pg"}, "spec": doc}))
    argv = [sys.executable, "-m", "glassbox_workloads", "shardedfinetune", "--spec", str(f), "--store",
            str(tmp_path / "s"), "--run-id", "kill0002"]
    first = subprocess.run(argv, env={**os.environ, "GLASSBOX_KILL_AT_STEP": "7"}, capture_output=True, text=True,
                           timeout=900)
    assert first.returncode == 137, first.stdout[-2000:] + first.stderr[-3000:]
    store = LocalStore(tmp_path / "s").sub("default/shardedfinetune/pg-kill0002")
    killed = read_manifest(store)
    assert [c.step for c in killed.checkpoints] == [2, 4, 6] and killed.state == "running"
    env = {k: v for k, v in os.environ.items() if k != "GLASSBOX_KILL_AT_STEP"}
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-3000:]
    assert "resumed at step 6" in second.stdout and "stage 1/2" not in second.stdout
    assert "stage 2/2: condition [SEP] 0.25 text -> text, steps 6..8 of 8" in second.stdout
    m = read_manifest(store)
    assert [(c.step, c.stage.index, c.stage.step) for c in m.checkpoints] == [(2, 1, 2), (4, 1, 4), (6, 2, 2), (8, 2, 4)]
    assert m.checkpoints[:3] == killed.checkpoints and m.state == "completed"


@pytest.mark.slow
def test_sharded_progressive_loss_at_mp_2_and_4_equals_mp_1():
    import os
    import subprocess
    import sys
    from pathlib import Path

    here = Path(__file__).resolve().parent
    env = dict(os.environ)
    root = here.parents[2]
    env["PYTHONPATH"] = os.pathsep.join(p for p in [str(root / "workloads"), str(root / "api"), env.get("PYTHONPATH", "")] if p)
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, str(here / "multidevice_recipes.py"), "progressive_equivalence"], env=env,
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


MOODS = ["happy", "sad", "calm"]


class _WordTokenizer:
    pad_id, bos_id, eos_id = 0, 1, 2

    def __init__(self) -> None:
        words = sorted(set(PLAN) | set(MOODS) | set("a tale the stood by later met at dawn [SEP]".split()))
        self.ids = {w: i + 3 for i, w in enumerate(words)}
        self.words = {i: w for w, i in self.ids.items()}
        self.vocab_size = len(words) + 3

    def encode(self, text: str) -> list[int]:
        return [self.ids[w] for w in text.split()]

    def decode(self, ids) -> str:
        return " ".join(self.words[int(i)] for i in ids if int(i) in self.words)


def _stories(n: int, seed: int) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        w, m = rng.sample(PLAN, 4), rng.choice(MOODS)
        out.append({"condition": f"a {m} tale", "plan": w,
                    "text": f"the {m} {w[0]} stood by the {w[1]} later the {w[2]} met the {w[3]} at dawn"})
    return out


@pytest.mark.slow
def test_planted_stage_model_writes_the_text_from_its_plan_and_not_without_it():
    """A 2-layer BART stage-2 model, 300 steps on cond [SEP] plan -> text (the plan is the stage
    text of vocabulary PLAN). Measured here: BLEU 1.00 from the gold plan, 0.48 from shuffled plan
    words, 0.11 from the condition alone (the unconditioned baseline), 0.90 with a wrong condition."""
    import optax
    import sacrebleu

    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes import seq2seq
    from glassbox_workloads.recipes.decoding import Generation
    from glassbox_workloads.redco import Deployer, Trainer

    jax = pytest.importorskip("jax")
    tok = _WordTokenizer()
    train, held = _stories(600, 0), _stories(40, 1)
    cfg = tiny_config("bart", vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_heads=4,
                      max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = build_model(cfg)
    recipe = seq2seq.make(model, tok, 16, 24, cfg.start_token_id, generation=Generation(max_new_tokens=20))
    tr = Trainer(Deployer(n_model_shards=1, devices=[jax.devices()[0]]), recipe.collate_fn, recipe.loss_fn,
                 init_params(cfg, jax.random.key(0)), optax.adamw(3e-3))
    for step in range(300):
        i = (step * 16) % 592
        tr.train_step(recipe.collate_fn(pg.stage_examples(train[i:i + 16], [PLAN], 2)))
    params, pred = jax.device_get(tr.params), jax.jit(recipe.pred_fn)

    def bleu(sources: list[str]) -> float:
        batch = recipe.pred_collate_fn([{"source": s} for s in sources])
        out = recipe.output_fn(pred(jax.random.key(0), params, batch))
        return sacrebleu.corpus_bleu(out, [[e["text"] for e in held]]).score / 100

    gold = [p["source"] for p in pg.stage_examples(held, [PLAN], 2)]
    assert all(s == pg.stage_input(e["condition"], " ".join(e["plan"])) for s, e in zip(gold, held))
    rng = random.Random(5)
    shuffled = bleu([pg.stage_input(e["condition"], " ".join(rng.sample(e["plan"], 4))) for e in held])
    alone = bleu([e["condition"] for e in held])
    with_gold = bleu(gold)
    assert with_gold >= 0.8 and shuffled <= 0.65 and alone <= 0.3, (with_gold, shuffled, alone)


def test_plan_of_the_tiny_example_lists_every_stage(monkeypatch):
    """`glassbox plan` covers the run's stages: one line per model, in training order, with its prefix."""
    from pathlib import Path

    import yaml

    from glassbox_api.kinds.shardedfinetune import ShardedFinetuneSpec
    from glassbox_workloads.plan_cli import compute_plan, render_table

    root_dir = Path(__file__).resolve().parents[3]
    doc = yaml.safe_load((root_dir / "examples/finetune-progressive-tiny.yaml").read_text())["spec"]
    doc["recipe"]["progressive"]["stages"] = [0.2, 0.25]
    plan = compute_plan(ShardedFinetuneSpec.model_validate(doc), local_devices=1)
    assert [s["maps"] for s in plan["stages"]] == ["condition -> 0.2 text", "condition [SEP] 0.2 text -> 0.25 text",
                                                   "condition [SEP] 0.25 text -> text"]
    assert plan["stages"][2]["checkpoints"] == "stages/3/checkpoints/"
    assert "3 models like this one, trained in order" in render_table(plan)


def _chained_stories(n: int, seed: int, plans: int = 30) -> list[dict]:
    """The condition names the mood and one of `plans` fixed plans by number (stage 1 learns the
    table number -> four plan words); the text puts the plan into the template (stage 2 learns to
    write it from the stage text). The plan words are nowhere in the condition itself."""
    table = [random.Random(1000 + i).sample(PLAN, 4) for i in range(plans)]
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        i, m = rng.randrange(plans), rng.choice(MOODS)
        w = table[i]
        out.append({"condition": f"a {m} tale of n{i}", "plan": w,
                    "text": f"the {m} {w[0]} stood by the {w[1]} later the {w[2]} met the {w[3]} at dawn"})
    return out


def _train_stage(tok, stage: int, train: list[dict], steps: int = 300):
    """A 2-layer BART stage model trained on the planted pairs of `stage` (vocabulary PLAN);
    returns a pg.Generate over its greedy decoding."""
    import optax

    from glassbox_workloads.flax_models import build_model, init_params, tiny_config
    from glassbox_workloads.recipes import seq2seq
    from glassbox_workloads.recipes.decoding import Generation
    from glassbox_workloads.redco import Deployer, Trainer

    jax = pytest.importorskip("jax")
    cfg = tiny_config("bart", vocab_size=tok.vocab_size, hidden_size=64, intermediate_size=128, num_heads=4,
                      max_position_embeddings=32, pad_token_id=0, bos_token_id=1, eos_token_id=2)
    recipe = seq2seq.make(build_model(cfg), tok, 24, 24, cfg.start_token_id, generation=Generation(max_new_tokens=20))
    tr = Trainer(Deployer(n_model_shards=1, devices=[jax.devices()[0]]), recipe.collate_fn, recipe.loss_fn,
                 init_params(cfg, jax.random.key(stage)), optax.adamw(3e-3))
    for step in range(steps):
        i = (step * 16) % (len(train) - 16)
        tr.train_step(recipe.collate_fn(pg.stage_examples(train[i:i + 16], [PLAN], stage)))
    params, pred = jax.device_get(tr.params), jax.jit(recipe.pred_fn)

    def generate(sources: list[str], attempt: int) -> list[str]:
        batch = recipe.pred_collate_fn([{"source": s} for s in sources])
        return recipe.output_fn(pred(jax.random.key(attempt), params, batch))

    return generate


@pytest.mark.slow
def test_planted_chain_writes_the_text_through_its_stage_text_and_not_from_the_condition_alone():
    """Two tiny trained stages chained (pg.chain): condition -> stage 1 (the plan words) -> stage 2
    (the text). The chain reaches the held-out texts (BLEU-4 >= 0.8) while the same stage-2 model
    from the condition alone, the unconditioned baseline, does not (<= 0.4). Measured here: stage 1
    plan BLEU 1.00, chained text 1.00, condition alone 0.20 (template words only), 79 s."""
    import sacrebleu

    class Tok(_WordTokenizer):
        def __init__(self) -> None:
            super().__init__()
            for w in ["of"] + [f"n{i}" for i in range(30)]:
                self.ids[w], self.words[self.vocab_size] = self.vocab_size, w
                self.vocab_size += 1

    tok = Tok()
    train, held = _chained_stories(600, 0), _chained_stories(40, 1)
    stages = [_train_stage(tok, 1, train), _train_stage(tok, 2, train)]
    conds = [e["condition"] for e in held]
    texts = pg.chain(conds, stages)
    refs = [[e["text"] for e in held]]
    plan_bleu = sacrebleu.corpus_bleu([t[0] for t in texts], [[" ".join(e["plan"]) for e in held]]).score / 100
    chained = sacrebleu.corpus_bleu([t[1] for t in texts], refs).score / 100
    alone = sacrebleu.corpus_bleu(stages[1](conds, 0), refs).score / 100
    assert plan_bleu >= 0.8 and chained >= 0.8 and alone <= 0.4 and chained - alone >= 0.5, (plan_bleu, chained, alone)


def test_chain_feeds_each_stage_the_condition_and_the_previous_stage_text_and_resamples_letterless_texts():
    seen: list[list[str]] = []

    def stage(tag: str):
        def generate(sources: list[str], attempt: int) -> list[str]:
            seen.append(list(sources))
            return [("123" if attempt == 0 and s.startswith("b") else f"{tag}{attempt}") for s in sources]
        return generate

    out = pg.chain(["a", "b"], [stage("x"), stage("y")], retries=2)
    assert seen[0] == ["a", "b"] and seen[1] == ["b"]  # b's stage-1 text had no letter: resampled once
    assert seen[2] == ["a [SEP] x0", "b [SEP] x1"] and seen[3] == ["b [SEP] x1"]
    assert out == [["x0", "y0"], ["x1", "y1"]]
    assert pg.generate_with_letters(lambda s, a: ["42"] * len(s), ["q"], retries=3) == ["42"]  # gives up after 3
    assert pg.has_letter("é1") and not pg.has_letter("1 2 _ ,")


@pytest.mark.parametrize("published,stage,restored", [
    (None, 1, None),  # a new run
    ((1, 2), 1, True),  # mid-stage 1: restore it
    ((1, 4), 2, None),  # stage 1 ended: stage 2 from the model source, stage 1 not retrained
    ((2, 3), 2, True),
    ((2, 4), 2, True),  # the last stage ended: restored, only the chain is left
])
def test_a_rerun_resumes_at_the_stage_and_step_its_latest_checkpoint_says(published, stage, restored):
    from glassbox_api.manifest import CheckpointEntry, StagePosition
    from glassbox_workloads.finetune.stages import resume_point

    entry = None
    if published:
        k, s = published
        entry = CheckpointEntry(step=(k - 1) * 4 + s, tokens=0, path=f"stages/{k}/checkpoints/{s:08d}",
                                stage=StagePosition(index=k, count=2, step=s, steps=4))
    assert resume_point(entry, 2, 4) == (stage, entry if restored else None)
