"""The evaluator's online part, pure: groundedness, drift statistics, windows and quality summaries.

No I/O here: the embedder is passed in, records come from the caller (see `cairn_evaluator.quality`).
"""
