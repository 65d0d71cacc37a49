"""Tests of the benchmark scripts that a later run depends on."""
