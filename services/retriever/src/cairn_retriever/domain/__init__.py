"""The retriever's rules: chunking, rank fusion, context assembly within a token budget. No I/O here."""
