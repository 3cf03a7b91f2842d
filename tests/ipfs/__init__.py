"""IPFS interop tests against real kubo and Helia peers (see peers.py)."""
