"""Shipped hardware profiles (``*.toml`` package data); see :mod:`snnprof.energy.profiles` for the format."""
