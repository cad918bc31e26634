"""Cairn evaluator service."""
