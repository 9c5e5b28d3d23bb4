"""The FUSE mount: pyfuse3 operations over the client library (`threefs mount`)."""
