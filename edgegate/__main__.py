from edgegate.cli.main import main

raise SystemExit(main())
