"""Format versions heparch reads and writes."""

from __future__ import annotations

FORMAT_URI = "https://heparch.org/spec/bundle"
FORMAT_VERSION = "1.0.0"
FORMAT_MAJOR = 1
SCHEMA_DIR = "1.0.0"
