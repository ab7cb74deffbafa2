import sys

from .harness.commands import main

sys.exit(main())
