"""The training phase."""
