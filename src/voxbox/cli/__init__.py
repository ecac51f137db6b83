"""The voxbox command line: server commands and client commands."""
