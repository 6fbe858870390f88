"""Datasets and readers: identity folders, insightface RecordIO and .bin sets, pairs files."""

from facebench.data.images import load_face
from facebench.data.pairs import PairSet, read_pairs

__all__ = ["PairSet", "load_face", "read_pairs"]
