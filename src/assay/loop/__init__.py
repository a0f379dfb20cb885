"""The autonomous loop: a keep-or-discard ratchet over git commits on branch `assay/<tag>`."""
