"""Cairn retriever service."""
