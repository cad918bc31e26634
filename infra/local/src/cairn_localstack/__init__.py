"""The embedded local stack: Tansu (Kafka protocol), PostgreSQL with pgvector, SeaweedFS (S3), run as plain processes."""
