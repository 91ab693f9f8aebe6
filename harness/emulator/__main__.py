import sys

from harness.emulator.server import main

sys.exit(main())
