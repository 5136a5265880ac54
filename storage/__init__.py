"""Storage: SQLAlchemy models, queries that take a session and never commit, migrations."""
