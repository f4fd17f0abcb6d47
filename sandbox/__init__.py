"""Local emulators of the vendor APIs, over real HTTP, for the demo and tests."""
