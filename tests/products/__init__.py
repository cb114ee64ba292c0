"""Tests of the products package, one file per module."""
