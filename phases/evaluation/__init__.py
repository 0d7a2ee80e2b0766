"""The evaluation phase."""
