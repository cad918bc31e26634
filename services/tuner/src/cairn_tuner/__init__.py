"""Cairn tuner service."""
