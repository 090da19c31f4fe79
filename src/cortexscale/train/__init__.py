"""train stage of the cortexscale pipeline (filled in by later issues)."""
