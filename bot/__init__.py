"""deploybot's runtime shell: config, processes, storage, platform clients, fakes."""
