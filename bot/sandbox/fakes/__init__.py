"""Test doubles of the vendor APIs, served over real HTTP on 127.0.0.1.

The tests and the sandbox console both use them, so they live inside the package.
"""
