"""Report: seed means, the summary table, the claims table, figure specifications and drawing, the results page.

Imports ``common``, ``data``, ``training`` (layer names) and ``scoring`` (the held-out choice's rules); torch-free
where the workflow parses (``figure_specs``).
"""

__all__ = [
    "claims",
    "claims_label_issues",
    "figure_data",
    "figure_specs",
    "figure_style",
    "figure_text",
    "figures",
    "label_issue_figure",
    "results_doc",
    "seed_means",
    "summary",
]
