"""Shared workload runtime: spec loading, the checkpoint publisher, metrics and progress."""
