"""Bundled reference data (name mappings, linter tables); see LICENSES/ for their notices."""
