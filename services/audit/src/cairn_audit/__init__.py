"""Cairn audit service: every event of every request, stored once, chained by hash, queryable as a trail."""
