"""Garoupa ML core: text normalisation, the classification pipeline, evaluation and fast scoring."""
