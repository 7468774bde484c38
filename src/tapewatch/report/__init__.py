"""Human-facing output: summary tables and charts of alerts."""
