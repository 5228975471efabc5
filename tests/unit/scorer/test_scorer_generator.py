"""Generators: a causal and a seq2seq model glassbox loads itself (saved in HF layout by the test),
and an OpenAI-compatible endpoint (a local HTTP server): 17 candidates in strategy order. The
adaptation fills in missing samples from the generator."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from glassbox_api.kinds.common import ModelSpec
from glassbox_api.kinds.scorerservice import Generator as GeneratorSpec
from glassbox_api.kinds.scorerservice import ScorerServiceSpec
from glassbox_workloads.runtime import hfmodels
from glassbox_workloads.runtime.errors import BadInput
from glassbox_workloads.scorer.generator import load_generator, sampling_kwargs
from glassbox_workloads.scorer.train import load_task
from planted import FakeGenerator

TEXTS = ["say apple", "apple", "say river", "river", "the cat sat on the mat"] * 10
ORDER = ["beam4"] + ["sampling"] * 4 + ["temp0.9"] * 4 + ["topk40"] * 4 + ["topp0.95"] * 4


def _saved(tmp_path, arch, auto):
    m = ModelSpec.model_validate({"architecture": arch, "config": {"vocabSize": 300, "hiddenSize": 32, "intermediateSize": 64,
                                                                    "numLayers": 1, "numHeads": 2, "maxPositionEmbeddings": 128}})
    loaded = hfmodels.load(m, auto, tokenizer_texts=TEXTS, seed=0)
    return hfmodels.save(loaded.model, loaded.tokenizer, tmp_path / arch)


@pytest.mark.parametrize("arch,auto", [("gpt2", "AutoModelForCausalLM"), ("bart", "AutoModelForSeq2SeqLM")])
def test_a_loaded_model_makes_17_candidates_in_strategy_order(tmp_path, arch, auto):
    import transformers

    path = _saved(tmp_path, arch, getattr(transformers, auto))
    spec = GeneratorSpec.model_validate({"model": {"uri": str(path)}, "maxNewTokens": 5})
    gen = load_generator(spec, force_cpu=True)
    (cands,) = gen.generate(["say apple"])
    assert [c.strategy for c in cands] == ORDER
    assert (gen.seq2seq if hasattr(gen, "seq2seq") else None) == (arch == "bart")
    assert gen.generate(["say apple"])[0] == cands  # seeded: the same prompt, the same candidates


def test_sampling_arguments_record_hf_defaults():
    s = {x.name: sampling_kwargs(x) for x in GeneratorSpec.model_validate({"model": {"uri": "x"}}).strategies}
    assert s["beam4"] == {"do_sample": False, "num_beams": 4, "num_return_sequences": 1}
    assert s["sampling"]["top_k"] == 50 and s["sampling"]["temperature"] == 1.0  # HF's default top_k, as the authors ran
    assert s["temp0.9"]["temperature"] == 0.9 and s["topk40"]["top_k"] == 40 and s["topp0.95"]["top_p"] == 0.95


def test_a_random_init_generator_is_bad_input():
    spec = GeneratorSpec.model_validate({"model": {"architecture": "gpt2"}})
    with pytest.raises(BadInput) as err:
        load_generator(spec)
    assert err.value.field == "spec.generator.model"


class _Completions(BaseHTTPRequestHandler):
    seen: list = []

    def do_POST(self):  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Completions.seen.append((self.path, self.headers.get("Authorization"), body))
        out = {"choices": [{"index": i, "text": f" {body['prompt']}-{body.get('temperature')}-{i}"} for i in range(body["n"])]}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_an_openai_compatible_endpoint_is_asked_once_per_strategy():
    srv = HTTPServer(("127.0.0.1", 0), _Completions)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        spec = GeneratorSpec.model_validate({"endpoint": {"url": f"http://127.0.0.1:{srv.server_port}/v1", "model": "flan"}})
        (cands,) = load_generator(spec, api_key="k").generate(["q"])
    finally:
        srv.shutdown()
    assert [c.strategy for c in cands] == ORDER and cands[0].text == "q-0.0-0"
    paths = {p for p, _, _ in _Completions.seen}
    assert paths == {"/v1/completions"} and {a for _, a, _ in _Completions.seen} == {"Bearer k"}
    bodies = [b for _, _, b in _Completions.seen]
    assert [b["n"] for b in bodies] == [1, 4, 4, 4, 4] and bodies[3]["top_k"] == 40 and bodies[0]["max_tokens"] == 64


def test_adaptation_data_without_samples_gets_them_from_the_generator(tmp_path):
    (tmp_path / "d.jsonl").write_text("".join(json.dumps({"q": f"say {w}", "a": [w]}) + "\n" for w in ("apple", "river")))
    spec = ScorerServiceSpec.model_validate({"model": {"uri": "x"}, "generator": {"model": {"uri": "g"}}, "adaptation": {
        "data": {"uri": str(tmp_path / "d.jsonl")}, "instructionField": "q", "referencesField": "a"}})
    examples = load_task(spec, "data", None, FakeGenerator())
    assert [len(e.samples) for e in examples] == [17, 17] and examples[0].references == ("apple",)
