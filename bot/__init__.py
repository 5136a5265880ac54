"""Application assembly: settings, app factory, CLI, persistence and error handling."""
