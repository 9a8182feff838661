"""What only large corpora need: shards, the Ray build engine, huge-page copies of large vector
indexes and reading files ahead of FAISS. A build or load of an ordinary corpus never runs it."""
