"""The shared space put to use: embeddings of a table's fields (`Predictor.embed`, `plait embed`)
and cross-modal search over a saved vector index (`plait search`)."""
