"""threefs: a Python implementation of DeepSeek's Fire-Flyer File System (3FS)."""

__version__ = "0.1.0"
