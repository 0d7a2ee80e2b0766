"""The retrieval phase."""
