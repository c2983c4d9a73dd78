"""`python -m aqa_cli` (also what `torchrun -m aqa_cli train ...` runs)."""

from aqa_cli.cli import main

if __name__ == "__main__":
    main()
