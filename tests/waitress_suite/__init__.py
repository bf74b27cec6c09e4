"""waitress's own functional suite, run against waitress_like (see test_waitress_functional)."""
