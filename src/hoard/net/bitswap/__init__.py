"""IPFS bitswap (/ipfs/bitswap/1.2.0, 1.1.0, 1.0.0): a `BlockExchange` (net/exchange.py)."""

from __future__ import annotations

from .bitswap import Bitswap, BitswapStats
from .message import PROTOCOLS
from .session import FetchLimits, Session

__all__ = ["PROTOCOLS", "Bitswap", "BitswapStats", "FetchLimits", "Session"]
