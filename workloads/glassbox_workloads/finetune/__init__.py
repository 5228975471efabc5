"""ShardedFinetune: the Redco-style sharded finetuning workload (setup, the run, the entry)."""

from .workload import FinetuneResult, run

__all__ = ["FinetuneResult", "run"]
