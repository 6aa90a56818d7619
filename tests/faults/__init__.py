"""The fault suite: README's "What mailmentor promises", proved with real processes and servers
killed at random points (see conftest.py for the seed that picks them)."""
