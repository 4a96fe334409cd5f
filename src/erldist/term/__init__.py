"""The External Term Format: pure functions, no I/O."""
