"""pip itself: its command line read by its own parser, requirements files, and starting
pip as a child process."""
