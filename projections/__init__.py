"""Read models: each view writes its rows and its tracking position in one transaction."""
