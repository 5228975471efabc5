"""PretrainRun: LLM360-style transparent pretraining (data prep, training, analysis, export)."""
