"""Sub-commands of the fedhar CLI, one module each."""
