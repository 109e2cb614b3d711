"""`python -m nlptune` (also what `torchrun -m nlptune` runs)."""
from nlptune.cli import main

if __name__ == "__main__":
    main()
