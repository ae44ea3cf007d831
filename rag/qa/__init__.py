"""Answering: what is asked, retrieval, evidence, the judge, conflicts, verification and the Assistant."""
