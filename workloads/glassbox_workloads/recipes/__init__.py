"""Recipes: each is Redco's three functions (collate_fn, loss_fn, pred_fn) plus optional ones.

Built-in: causal-lm (instruction tuning), seq2seq (summarization), soft-q (RL with path
consistency). A user recipe names its functions as `module:function` references.
"""

from .common import ByteTokenizer, HFTokenizer, Recipe, resolve

__all__ = ["ByteTokenizer", "HFTokenizer", "Recipe", "resolve"]
