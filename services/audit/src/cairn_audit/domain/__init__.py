"""The audit trail's rules: records, the hash chain and causal order. No I/O here."""
