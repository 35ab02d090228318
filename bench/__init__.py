"""Speed and memory measurements (run as scripts: python -m bench.<name>); never part of the tests."""
