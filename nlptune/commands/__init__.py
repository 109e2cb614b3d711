"""One module per `nlptune` subcommand: `add_parser(sub)` and a lazily importing `handle(args)`."""
