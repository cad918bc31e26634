"""Cairn safety service."""
