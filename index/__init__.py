"""Build side of newsqa: articles → clean text → passages → embeddings → index folder on disk."""
