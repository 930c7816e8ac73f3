from redact_proxy.cli import main

raise SystemExit(main())
