"""`python -m rerankctl` (also what `accelerate launch -m rerankctl` runs)."""

from rerankctl.cli.main import main

if __name__ == "__main__":
    main()
