"""The gateway's pure rules: OpenAI request and response shapes, the mapping to and from Cairn events,
and the errors clients get. No I/O here."""
