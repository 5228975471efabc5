"""CTC (Deng et al., 2021): evaluation as information alignment, with the authors' definitions
(tanyuqian/ctc-gen-eval, as SEEDS-DETAIL section 3.1 restates them).

Modules:
- aligner:        Alignment, the Aligner base (align_many / align / score_many) and aggregate().
- embedding:      E aligner: max cosine of contextual embeddings of any HF encoder at a chosen layer.
- discriminative: D aligner: a token classifier over words (sum of their pieces' features),
                  P(aligned) = softmax[:, 0].
- regression:     R aligner: one regressed alignment score per (input, context) pair.
- scorers:        consistency, relevance, preservation, groundedness, engagingness.
- weak:           weak supervision for D/R: mask spans, refill them, label 1 iff a filling differs.
- train:          train_discriminative / train_regression on labelled examples.
- load:           aligners from a spec's ModelSpec through runtime.hfmodels (BadInput naming the field).
"""
