from racefree.cli import main

raise SystemExit(main())
