"""The retriever's own Prometheus metrics (served with the bus metrics on CAIRN_METRICS_PORT)."""

from prometheus_client import Counter, Histogram

RETRIEVALS = Counter(
    "cairn_retrieval_requests",
    "Requests handled by the retriever, by outcome: hit (context added), miss (nothing above the "
    "threshold or within budget), skipped (no retrieval asked), failed. Hit rate = hit / (hit + miss).",
    ["outcome"],
)
CONTEXT_CHUNKS = Histogram(
    "cairn_retrieval_context_chunks",
    "Chunks placed in a request's context.",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 50),
)
CONTEXT_TOKENS = Histogram(
    "cairn_retrieval_context_tokens",
    "Tokens taken by a request's retrieved context.",
    buckets=(0, 64, 128, 256, 512, 1024, 2048, 4096, 8192),
)
LOOP_FEEDBACK = Counter(
    "cairn_retrieval_loop_feedback",
    "Feedback the retrieval loop read, by outcome: applied (votes cast on chunks), unserved (no record "
    "of what the request was served), ignored (neutral, naming no source), duplicate (feedback id seen).",
    ["outcome"],
)
PRIOR_VOTES = Counter(
    "cairn_retrieval_prior_votes",
    "Votes feedback cast on chunks' priors, by direction (up, down), and named sources outside the "
    "request's candidate pool (unreachable).",
    ["direction"],
)
DOCUMENTS_REINDEXED = Counter(
    "cairn_retrieval_documents_reindexed",
    "Documents of watched sources the index changed, by change: added, changed, removed.",
    ["change"],
)
