from __future__ import annotations

from ortprep.cli import main

if __name__ == "__main__":
    main()
