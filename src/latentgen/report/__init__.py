"""Report: seed means, the summary table, the claims table, figure specifications and drawing, the results page.

Imports ``common``, ``data``, ``training`` (layer names) and ``scoring`` (the held-out choice's rules); torch-free
where the workflow parses (``figure_specs``).
"""

__all__ = ["claims", "figure_specs", "figures", "results_doc", "seed_means", "summary"]
