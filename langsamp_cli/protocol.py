"""Protocol numbers that several modules share (torch-free, so the CLI can show them without loading torch).

Task settings live in the task YAMLs; these are the values library functions fall back to when called directly.
"""

PAPER_LAYER = 8  # hidden_states index of the sentence vectors (retrieval, similarity); _retrieval.yaml says the same
