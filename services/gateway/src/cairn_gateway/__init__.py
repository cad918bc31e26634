"""Cairn gateway service: an OpenAI-compatible HTTP front door (`POST /v1/chat/completions`,
`GET /v1/models`). Each chat completion becomes a `cairn.request.submitted.v1` on `cairn.requests`;
its answer is the request's `cairn.response.completed.v1` on `cairn.responses`.

Public entry points: `app.router` (the service's contract), `app.main` (the process), `api.create_app` (HTTP).
"""
