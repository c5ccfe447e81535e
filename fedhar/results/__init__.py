"""Layer 5: results: the per-client record, the run journal, the report, HTML pages and figures."""
