"""Evaluation of the assistant on question sets and public benchmarks. Uses the public API only."""
