"""ScorerService (Cappy): the scorer, its adaptation data and training, boosting, and its model server."""
