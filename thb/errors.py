class ThbError(Exception):
    """Base of every error the observatory raises on purpose; the CLI maps each subclass to an exit code."""

    exit_code = 1


class UserInputError(ThbError):
    """Bad arguments or input files from the person running a command."""

    exit_code = 2


class ConfigError(UserInputError):
    """A configuration file (YAML) that does not match its model: names the file, the key and what was expected."""
