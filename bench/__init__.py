"""Benchmarks of logsvc (not tests): see bench/README.md."""
