"""Run reports: an HTML page with an inline SVG chart, and the rows the CLI prints."""
