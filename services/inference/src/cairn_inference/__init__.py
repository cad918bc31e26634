"""Cairn inference service."""
