"""The cairn command line for operators and upstream developers."""
