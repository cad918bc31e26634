"""Settings of the retriever service (env prefix CAIRN_)."""

from typing import Literal

from pydantic import Field

from cairn_bus.settings import PostgresSettings, S3Settings, ServiceSettings


class Settings(ServiceSettings, PostgresSettings, S3Settings):
    """Document ingestion, embeddings and hybrid search."""

    service_name: str = Field("retriever", description="Service name.")
    vector_store: Literal["pgvector", "weaviate"] = Field("pgvector", description="Vector store adapter.")
    weaviate_url: str | None = Field(None, description="Weaviate HTTP URL when vector_store=weaviate.")
    weaviate_grpc_port: int = Field(50051, description="Weaviate gRPC port.")
    embedding_model_path: str | None = Field(None, description="Local path of the embedding model.")
