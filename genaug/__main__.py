import sys

from genaug.cli import main

sys.exit(main())
