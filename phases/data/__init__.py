"""The data phase."""
