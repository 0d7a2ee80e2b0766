"""The post_training phase."""
