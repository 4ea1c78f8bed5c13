from helpers.tools.cli import main

raise SystemExit(main())
