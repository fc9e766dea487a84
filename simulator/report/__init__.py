"""The decision report: a self-contained HTML page, Markdown with PNG figures, and summary.json."""

from .writer import report_stem, summary_json, write_report

__all__ = ["report_stem", "summary_json", "write_report"]
