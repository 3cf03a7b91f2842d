"""The `hoard` command line."""
