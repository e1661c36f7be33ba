"""Where data lives: the measurement/evaluation store and the bundled benchmark loaders."""
