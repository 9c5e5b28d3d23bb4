"""Transactional KV engines (FoundationDB-shaped) that hold metadata and cluster state."""
from threefs.kv.engine import KVEngine, Transaction, TransactionConflict, open_engine, run_txn

__all__ = ["KVEngine", "Transaction", "TransactionConflict", "open_engine", "run_txn"]
