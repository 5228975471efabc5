module glassbox.dev/tests/real/probe

go 1.26.0
