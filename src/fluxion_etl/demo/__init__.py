"""Synthetic Stellar POS sources for the demo, the tests and the benchmarks."""
