"""Settings and the command line's manners: the four sources and their validation,
check-config, one-line errors and exit codes, help texts, logging set-up and redaction."""
