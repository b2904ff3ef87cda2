"""The demo cooperative, and synthetic data for benchmarks."""
