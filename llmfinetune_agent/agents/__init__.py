"""Graph nodes: thin agents that read state, call a phase, and write a small update."""
