"""``facebench distill``: a trained teacher's knowledge into a student, through the one training engine."""
