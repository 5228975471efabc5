"""A tiny ScorerService model server for the HTTP tests: `python serve_tiny.py PORT DELAY`.

The real app (scorer.app.build_state, the routes, serving.server) around a random-init 2-layer
RoBERTa and a fixed generator; DELAY seconds of extra loading time let a test watch readiness."""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from conftest import TEXTS, TINY  # noqa: E402
from glassbox_api.kinds.common import ModelSpec  # noqa: E402
from glassbox_workloads.scorer.app import build_state  # noqa: E402
from glassbox_workloads.scorer.generator import Candidate  # noqa: E402
from glassbox_workloads.scorer.model import load_scorer  # noqa: E402
from glassbox_workloads.scorer.service import make_model, router  # noqa: E402
from glassbox_workloads.serving.server import ServeOptions, serve  # noqa: E402
from planted import STRATEGIES  # noqa: E402


class FixedGenerator:
    """17 candidates per prompt, the same for the same prompt: the last word, then 16 others."""

    def generate(self, prompts):
        words = ("apple", "river", "stone", "the cat sat on the mat")
        return [[Candidate(p.rsplit(" ", 1)[-1] if k == 0 else words[k % 4] + " " * (k // 4), s)
                 for k, s in enumerate(STRATEGIES)] for p in prompts]


def main() -> int:
    import torch

    torch.set_num_threads(1)
    port, delay = int(sys.argv[1]), float(sys.argv[2])

    def scorer():
        time.sleep(delay)
        return load_scorer(ModelSpec.model_validate(TINY), max_length=32, texts=TEXTS, seed=0, need_head=False,
                           force_cpu=True)

    state, load = build_state("tiny", 8, "clip", scorer, FixedGenerator)
    model = make_model(state)

    def ready() -> None:
        state.ready = model.ready = True

    return serve([model], load=load, ready=ready, routers=[router(state)], options=ServeOptions(port=port))


if __name__ == "__main__":
    sys.exit(main())
