"""erldist: a Python process as a real node of an Erlang distribution cluster."""
