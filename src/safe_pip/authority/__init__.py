"""Where a page's required serial comes from: the index's changelog and the serials
remembered on this machine."""
