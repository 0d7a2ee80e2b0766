"""The synthesis phase."""
