"""The feedback service's pure domain: stored request trails, curation rules, PII scrubbing, datasets."""
