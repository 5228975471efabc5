"""KGHarvest: BertNet-style harvesting of entity tuples for a relation from a masked language model.

The parts, one module each (SEEDS-DETAIL section 2): prompts.py (prompt validity, style and the
paraphrase rounds), paraphraser.py (the optional generator model), mlm.py (the masked LM behind one
interface, with a forward-row counter), scoring.py (the masked rows and the score formula,
rescoring over title-case variants), weights.py (prompt weights from seeds and their corruptions),
filters.py (stop words and entity filters), search.py (the exact branch-and-bound search and its
brute-force twin), harvest.py (one relation end to end), corpus.py and facts.py (the optional
masked-LM pretraining and the synthetic fact corpora), publish.py (per-relation files, the
manifest, kg.jsonl), workload.py and main.py (the run, resume, the entrypoint).
"""
