"""Cairn prompt-store service."""
