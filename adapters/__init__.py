"""Everything that talks to the outside world apart from serving HTTP."""
