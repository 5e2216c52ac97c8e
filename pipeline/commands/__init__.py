"""CLI commands, one module per area. Each module only parses options, calls its stage and formats."""
