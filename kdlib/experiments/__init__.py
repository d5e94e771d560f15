"""Per-chapter experiment definitions: the configs of each notebook at each preset."""
