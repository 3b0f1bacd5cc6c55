"""plait: multimodal fusion you can trust and serve."""
