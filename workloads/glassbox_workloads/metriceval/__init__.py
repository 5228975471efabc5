"""MetricEval: score generated text with CTC's alignment metrics and the standard NLG metrics, and
follow a training run's checkpoints (the workload behind the MetricEval kind).

- examples: the examples file, checked field by field with the line of each example;
- registry: spec metric names -> the metrics library's functions;
- models:   the aligners, the evaluated LM and the BERTScore encoder, loaded on demand;
- ledger:   the run folder and manifest.json (the commit point of every chunk and output);
- scoring:  chunked, resumable scoring; corpus values; the result files;
- correlate: Pearson/Spearman/Kendall with human scores;
- follow:   model.fromRun.checkpoint: each (the curve);
- aligner_training: spec.aligner.train (the D aligner trained and published as a checkpoint);
- program, main: one run, and the `python -m glassbox_workloads metriceval` entry.
"""
