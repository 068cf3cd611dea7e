"""THB Observatory: shared plumbing (settings and the `thb` command line)."""
