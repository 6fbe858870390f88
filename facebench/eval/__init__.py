"""Evaluation: embedding extraction, verification metrics and their plots."""
