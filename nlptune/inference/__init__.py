"""Using a finished run: load its best model; evaluate, predict and export."""
