"""The training schedule: how many optimizer steps a job runs and which rows each step sees."""

from __future__ import annotations

import math
import random

from cairn_events import LoraConfig


def total_steps(rows: int, config: LoraConfig) -> int:
    """`max_steps` when set, else `epochs * ceil(rows / batch_size)`."""
    if config.max_steps is not None:
        return config.max_steps
    return config.epochs * math.ceil(rows / config.batch_size)


def batch_plan(rows: int, config: LoraConfig) -> list[list[int]]:
    """Row indexes of every step, `total_steps` batches long: each pass over the rows is a fresh
    shuffle from a generator seeded with `config.seed`, cut into `batch_size` pieces (the last may be
    shorter). The same rows and seed give the same plan."""
    if rows <= 0:
        raise ValueError("no rows to train on")
    steps = total_steps(rows, config)
    order = random.Random(config.seed)
    plan: list[list[int]] = []
    while len(plan) < steps:
        indexes = list(range(rows))
        order.shuffle(indexes)
        for start in range(0, rows, config.batch_size):
            plan.append(indexes[start : start + config.batch_size])
            if len(plan) == steps:
                break
    return plan
