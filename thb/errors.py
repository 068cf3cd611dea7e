"""One family of errors. Everything the observatory raises on purpose is a `ThbError`, whose
message is safe to show and log (it names files, columns, checks and codes, never a value of a
record); the command line maps each class to its exit code in one place (`thb.cli`).

>>> issubclass(BudgetError, ThbError), BudgetError.exit_code
(True, 3)
>>> sorted({c.__name__: c.exit_code for c in (UserInputError, ConfigError, ReleaseStateError)}.items())
[('ConfigError', 2), ('ReleaseStateError', 4), ('UserInputError', 2)]
"""


class ThbError(Exception):
    """Base of every error the observatory raises on purpose; the CLI maps each subclass to an exit code."""

    exit_code = 1


class UserInputError(ThbError):
    """Bad arguments or input files from the person running a command."""

    exit_code = 2


class ConfigError(UserInputError):
    """A configuration file (YAML) that does not match its model: names the file, the key and what was expected."""


class ContractError(ThbError):
    """A delivered export breaks its contract: unreadable, or records the warehouse cannot take.
    Ingest quarantines the file whole and goes on; `check` names the class of failure."""

    exit_code = 2

    def __init__(self, check: str, message: str):
        super().__init__(message)
        self.check = check


class CheckError(ThbError):
    """A check itself could not run (an error of the check, not of the data): the run stops."""


class BudgetError(ThbError):
    """A release would spend more privacy budget than the ledger allows; nothing was measured."""

    exit_code = 3


class ReleaseStateError(ThbError):
    """A release asked for at the wrong time: not complete yet, nothing to revise, or a charged
    release waiting to be published first."""

    exit_code = 4
