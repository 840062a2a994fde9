"""Overhead benchmarks of snnprof against plain forward passes and peer counters (not in the default tests)."""
