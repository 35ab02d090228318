"""Analysis: the streaming pipeline, its stages, metrics and the case results schema."""
