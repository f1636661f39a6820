"""Throughput and memory benchmarks of the sync, run by hand (`make bench`); not tests."""
