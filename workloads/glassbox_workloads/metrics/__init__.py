"""The metrics library of MetricEval (and of DialogBot's evaluation): one implementation per metric.

Modules, each pure where it can be (texts in, numbers out; models are passed in, never loaded here
except through ctc.load):
- base:       Scores (per-example values and the corpus value) and the input checks that name the
              example index of an empty hypothesis or a missing reference.
- text:       CTC/cleantext normalisation, whitespace and NLTK word tokenisation, NLTK stop words.
- standard:   ROUGE-1/2/L/Lsum, corpus BLEU (sacrebleu), NLTK sentence-average BLEU, NIST, METEOR.
- diversity:  Dist-n and Entropy-n (DSTC definitions).
- corpus:     set-level metrics of progressive generation: HA-BLEU-n, MSJ-n, TID, FBD.
- bertscore:  BERTScore through bert-score with a local model.
- lm:         perplexity of a causal or seq2seq LM on the references given the source.
- ctc:        CTC's aligners (E, D, R), its five metrics, the D aligner's weak supervision and training.
"""
