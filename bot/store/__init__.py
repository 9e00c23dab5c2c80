"""Storage: the database, its tables and migrations, and one store per table family.

Shared by the web and worker dynos, which meet only here. Nothing in this package knows
about Slack (an import-linter contract in pyproject.toml checks it).
"""
