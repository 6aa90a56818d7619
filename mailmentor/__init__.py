"""mailmentor: email-driven follow-up that helps its user close every advice loop."""

__version__ = "0.1.0"
