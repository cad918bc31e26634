"""Cairn feedback service."""
