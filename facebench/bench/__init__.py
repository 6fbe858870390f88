"""``facebench bench``: the whole study from one command, from presets kept as data."""
