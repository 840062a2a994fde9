"""Adversarial inputs: mutated configs and hardware profiles, run through ``snnprof count``."""
