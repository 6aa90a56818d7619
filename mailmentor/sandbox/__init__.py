"""Real local servers (IMAP, SMTP) for `mailmentor demo` and the test suite."""
