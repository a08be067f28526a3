import sys

from stockwire.cli import main

sys.exit(main())
