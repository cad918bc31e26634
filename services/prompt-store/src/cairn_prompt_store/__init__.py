"""Cairn prompt-store service: prompt templates with immutable versions, movable labels and sticky A/B
experiments in PostgreSQL; renders the prompt of every request.

Public entry points: `app.router` (the service), `cli.app` (`cairn prompts`), `api.create_app` (HTTP).
"""
