from ocpp_console.cli import main

raise SystemExit(main())
