"""An application module that cannot be imported (for the start-up back-off tests)."""

raise RuntimeError("this application is broken on purpose")
