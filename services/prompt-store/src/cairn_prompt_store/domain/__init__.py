"""The prompt store's rules: prompt specs, references, variables, sandboxed rendering, experiments.

Pure: no database, broker or HTTP imports here.
"""
