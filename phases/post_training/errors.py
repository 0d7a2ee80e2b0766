"""Errors of the post-training phase a user can cause (bad config, unsupported model)."""


class PostTrainingError(Exception):
    """Post-training could not make or judge a candidate."""


class PostTrainingInputError(PostTrainingError, ValueError):
    """A post-training request that cannot be carried out as given: the message says what to
    change (an unsupported model, adapter type, merge method or target)."""
