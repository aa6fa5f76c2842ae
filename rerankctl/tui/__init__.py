"""The Textual dashboard (`rerankctl tui`). Only `rerankctl.cli.tui` imports this package."""
