"""Long-running processes and dramatiq actors; thin wrappers over the mailmentor library."""
