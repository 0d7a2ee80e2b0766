"""Exit codes shared by every command: the contract scripts and CI rely on."""

OK = 0
FAILED = 1
BAD_INPUT = 2
AWAITING_APPROVAL = 3
CANCELLED = 4  # a gate was rejected (or the run was cancelled on request)
