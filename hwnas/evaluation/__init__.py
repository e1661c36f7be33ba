"""Accuracy of subnets on benchmarks, measured the way profilers measure time."""
