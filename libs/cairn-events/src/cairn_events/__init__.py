"""Cairn event contracts: one frozen pydantic model per event type and version, the topic registry, JSON and Avro codecs."""
