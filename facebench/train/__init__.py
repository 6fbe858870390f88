"""Training: one engine (``facebench.train.engine``) that ``train`` and ``distill`` plug their losses into."""
