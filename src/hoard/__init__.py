"""hoard: a peer-to-peer data plane for Python."""
