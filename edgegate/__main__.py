from edgegate.cli.main import main

# Guarded: worker processes started with "spawn" (edgegate/sync/parse_worker.py) import the
# main module again, and must not start a second daemon.
if __name__ == "__main__":
    raise SystemExit(main())
