"""The runtime: identifiers, patterns, mailboxes, processes.  Imports nothing above it."""
