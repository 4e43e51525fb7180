"""python -m heparch: the arch command."""

from heparch.cli.main import main

if __name__ == "__main__":
    main()
