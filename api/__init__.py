"""HTTP and CLI entry points, settings, and the one place where everything is wired."""
