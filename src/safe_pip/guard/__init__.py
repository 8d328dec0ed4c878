"""The guard between pip and the index: pages proven fresh or refused, files checked by
hash, prefetching, and the loopback server pip talks to."""
