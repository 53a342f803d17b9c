"""The practice product around the analyses: history, progress, linking, reviews, assignments."""
